"""`offlinepack kernel init`: the folder `kaggle kernels push -p DIR` takes (kernel-metadata.json + notebook)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from offlinepack.atomic import replace_folder, umask_modes
from offlinepack.errors import OfflinepackError, raise_if_problems
from offlinepack.kernel_kit.kernel_metadata import (
    DEFAULT_COMPETITION,
    KERNEL_METADATA,
    NOTEBOOK_NAME,
    KernelMetadata,
    kernel_metadata,
    parse_source,
)
from offlinepack.kernel_kit.notebook import NotebookPlan, notebook_json

PLACEHOLDER_OWNER = "INSERT_KAGGLE_USERNAME"


@dataclass(frozen=True, kw_only=True, slots=True)
class KernelFolder:
    output: Path
    metadata: KernelMetadata
    notebook: Path
    placeholder: bool  # the owner is a placeholder: edit kernel-metadata.json before pushing

    def to_dict(self) -> dict:
        return {"output": str(self.output), "notebook": str(self.notebook), "metadata": self.metadata.to_dict(),
                "placeholder": self.placeholder}


def _replaceable(folder: Path) -> bool:
    return folder.is_dir() and (not any(folder.iterdir()) or (folder / KERNEL_METADATA).is_file())


def init_kernel(output: Path, *, wheels: str, models: Sequence[str], competition: str | None = DEFAULT_COMPETITION,
                kernel_id: str | None = None, title: str | None = None, run_args: str | Sequence[str] = (),
                enable_gpu: bool = True, is_private: bool = True, force: bool = False,
                environ: Mapping[str, str] = os.environ) -> KernelFolder:
    """Check every name, then write the folder through a temporary one renamed into place."""
    output = Path(output)
    problems: list[str] = []
    wheels_source = parse_source(wheels, "wheels", problems)
    model_sources = [parse_source(m, "model", problems) for m in models]
    if not models:
        problems.append("no --model given: pass the model dataset(s) `offlinepack model pack` made (owner/slug)")
    competition_source = parse_source(competition, "competition", problems) if competition else None
    try:
        args = tuple(shlex.split(run_args)) if isinstance(run_args, str) else tuple(run_args)
    except ValueError as error:
        problems.append(f"--run-args: {error}")
        args = ()
    for flag in ("-o", "--output", "--model"):
        if flag in args:
            problems.append(f"--run-args must not hold {flag}: the notebook sets it (models come from --model)")
    if output.exists() and not force:
        problems.append(f"{output} already exists (pass --force to replace it)")
    elif output.exists() and not _replaceable(output):
        problems.append(f"{output} is not a kernel folder (no {KERNEL_METADATA}); --force replaces only a kernel "
                        "folder or an empty one")
    placeholder = False
    if kernel_id is None:
        owner = environ.get("KAGGLE_USERNAME", "").strip() or (wheels_source.parts[0] if wheels_source else "")
        owner = owner or PLACEHOLDER_OWNER
        kernel_id = f"{owner}/{(competition or 'vesuvius').split('-')[0]}-offlinepack"
        placeholder = owner == PLACEHOLDER_OWNER
    sources = [wheels_source, *model_sources, *([competition_source] if competition_source else [])]
    try:
        metadata = kernel_metadata(kernel_id=kernel_id, title=title, sources=[s for s in sources if s],
                                   enable_gpu=enable_gpu, is_private=is_private)
    except OfflinepackError as error:  # listed with the sources' problems: one run shows them all
        problems += error.problems
    raise_if_problems(problems, f"kernel init: {len(problems)} problem(s) with the arguments; nothing was written",
                      hint="sources are owner/slug (datasets) or owner/model/framework/variation/version "
                           "(Kaggle Models), optionally :path/inside; --id owner/kernel-slug (5-50 characters: "
                           "a-z, 0-9, -) with a --title Kaggle turns into the same slug")
    plan = NotebookPlan(title=metadata.title, wheels=wheels_source, models=tuple(model_sources),  # type: ignore[arg-type]
                        competition=competition_source, run_args=args)
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    except OSError as error:
        raise OfflinepackError(f"cannot write {output}: {error.strerror}", hint="pick a folder you can write to") from None
    try:
        (tmp / NOTEBOOK_NAME).write_text(notebook_json(plan), encoding="utf-8")
        (tmp / KERNEL_METADATA).write_text(json.dumps(metadata.to_dict(), indent=1) + "\n", encoding="utf-8")
        umask_modes(tmp)
        replace_folder(tmp, output)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return KernelFolder(output=output, metadata=metadata, notebook=output / NOTEBOOK_NAME, placeholder=placeholder)
