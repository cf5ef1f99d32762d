"""`offlinepack kernel init -o DIR --wheels owner/slug --model owner/slug ...`: the folder `kaggle kernels push` takes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from offlinepack.cli.output import console, err_console, print_json, reports_errors
from offlinepack.kernel_kit.kernel_metadata import DEFAULT_COMPETITION

app = typer.Typer(help="Write the Kaggle kernel (notebook + kernel-metadata.json).", no_args_is_help=True)


@app.command("init")
@reports_errors
def init(
    output: Annotated[Path, typer.Option("-o", "--output", file_okay=False, help="Kernel folder to create.")],
    wheels: Annotated[str, typer.Option("--wheels", help="The wheelhouse dataset `offlinepack build` made: owner/slug.")],
    models: Annotated[list[str], typer.Option("--model", help="Model dataset owner/slug (`model pack` prints it; "
                                              ":path/inside for one model of several), or a Kaggle Model "
                                              "owner/model/framework/variation/version. Repeat for an ensemble.")],
    competition: Annotated[str, typer.Option("--competition", help="Competition slug ('' for none).")] = DEFAULT_COMPETITION,
    kernel_id: Annotated[Optional[str], typer.Option("--id", help="Kernel id owner/kernel-slug (default: "
                                                     "$KAGGLE_USERNAME or the wheels' owner / vesuvius-offlinepack).")] = None,
    title: Annotated[Optional[str], typer.Option("--title", help="Kernel title; Kaggle makes the slug from it "
                                                 "(default: made from the id's slug).")] = None,
    run_args: Annotated[str, typer.Option("--run-args", help="More `offlinepack run` arguments, as one string, "
                                          "e.g. '--folds 0 --threshold 0.4'.")] = "",
    gpu: Annotated[bool, typer.Option("--gpu/--no-gpu", help="Ask for a GPU accelerator.")] = True,
    public: Annotated[bool, typer.Option("--public", help="Make the kernel public (default private).")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing kernel folder.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Write kernel-metadata.json and notebook.ipynb, the folder `kaggle kernels push` takes.

    kernel-metadata.json in the Kaggle CLI's format (internet off, every source listed) and notebook.ipynb:
    install, doctor, run, validate, the ledger record. Names Kaggle enforces are checked here."""
    from offlinepack.kernel_kit.kernel_init import init_kernel

    result = init_kernel(output, wheels=wheels, models=models, competition=competition or None, kernel_id=kernel_id,
                         title=title, run_args=run_args, enable_gpu=gpu, is_private=not public, force=force,
                         environ=os.environ)
    if as_json:
        print_json(result.to_dict())
        return
    meta = result.metadata
    console.print(f"wrote {result.output}: {meta.code_file} + kernel-metadata.json for {meta.id} ({meta.title!r})",
                  markup=False)
    console.print(f"sources: datasets {', '.join(meta.datasets) or '-'}; models {', '.join(meta.models) or '-'}; "
                  f"competition {', '.join(meta.competitions) or '-'}; GPU {'on' if meta.enable_gpu else 'off'}, "
                  "internet off", markup=False)
    if result.placeholder:
        err_console.print("warning: the kernel id has a placeholder owner: pass --id or set KAGGLE_USERNAME", markup=False)
    console.print(f"next: offlinepack rehearse {result.output} --target kernel.json --dataset "
                  f"{meta.datasets[0]}=WHEELHOUSE_DIR ...; then kaggle kernels push -p {result.output}", markup=False)
