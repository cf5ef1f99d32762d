"""`offlinepack model pack MODEL... -o DIR`: a Kaggle model dataset holding only what `run` loads, checked."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from offlinepack.cli.output import console, err_console, print_json, reports_errors
from offlinepack.units import format_size

app = typer.Typer(help="Prepare trained models for a Kaggle kernel.", no_args_is_help=True)


@app.command("pack")
@reports_errors
def pack(
    models: Annotated[list[Path], typer.Argument(help="nnU-Net v2 model folders, built-in U-Net checkpoint folders, "
                                                      "TorchScript files (with their .json sidecar).")],
    output: Annotated[Path, typer.Option("-o", "--output", file_okay=False, help="Dataset folder to create.")],
    dataset_id: Annotated[Optional[str], typer.Option("--dataset-id", help="Kaggle dataset id owner/slug "
                                                      "(default: $KAGGLE_USERNAME/<folder name>).")] = None,
    title: Annotated[Optional[str], typer.Option("--title", help="Dataset title, 6-50 characters.")] = None,
    license: Annotated[str, typer.Option("--license", help="Dataset license (exactly one).")] = "CC0-1.0",
    folds: Annotated[Optional[list[str]], typer.Option("--folds", help="nnU-Net folds to keep (repeat or "
                                                       "comma-separate; default: every fold present).")] = None,
    half: Annotated[bool, typer.Option("--half", help="Store weights as float16 (half the size; loaded back "
                                       "as float32).")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing pack (only once the new one is "
                                        "complete).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Pack trained models into a Kaggle dataset folder, each checked on CPU.

    Copy only what `offlinepack run` loads, strip optimizer and training state from checkpoints, load each
    model once on CPU with a small forward pass, and write dataset-metadata.json + a sha256 manifest."""
    from offlinepack.kernel_kit.model_pack import pack_models

    fold_list = [f.strip() for item in folds for f in item.split(",") if f.strip()] if folds else None
    result = pack_models(models, output, dataset_id=dataset_id, title=title, license=license, folds=fold_list,
                         half=half, force=force, environ=os.environ)
    if as_json:
        print_json(result.to_dict())
        return
    for model in result.models:
        folds_text = f", folds {','.join(model.folds)}" if model.folds else ""
        console.print(f"{model.name} ({model.kind}{folds_text}): {format_size(model.source_folder_size)} in its folder, "
                      f"{format_size(model.size_before)} of it loaded -> {format_size(model.size_after)} packed; "
                      f"check: {model.check}", markup=False)
        console.print(f"  kernel init --model {result.kernel_model_arg(model)}", markup=False)
    before = sum(m.size_before for m in result.models)
    after = sum(m.size_after for m in result.models)
    console.print(f"packed {len(result.models)} model(s) into {result.output}: {format_size(before)} -> "
                  f"{format_size(after)}{' (float16)' if result.half else ''}; {result.seconds:.1f} s", markup=False)
    for warning in result.warnings:
        err_console.print(f"warning: {warning}", markup=False)
    subfolders = any(m.kind == "nnunet" or m.path != "." for m in result.models)
    console.print(f"next: kaggle datasets create -p {result.output}" + (" --dir-mode zip" if subfolders else ""),
                  markup=False)
