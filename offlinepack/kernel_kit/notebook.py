"""The kernel's notebook (nbformat 4): setup, install, doctor, run, validate, ledger record.

Each step runs in a child Python and stops the notebook (RuntimeError) when its exit code says the
kernel would not produce a valid submission, so a failed step is a failed "Save & Run All", not a
silent one. Inputs are found under both Kaggle mount layouts by `kaggle_input` in the first cell.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from offlinepack.errors import OfflinepackError
from offlinepack.files import read_json
from offlinepack.kernel_kit.kernel_metadata import Source

SUBMISSION = "/kaggle/working/submission.zip"
LEDGER = "/kaggle/working/offlinepack-runs.jsonl"
# `kaggle_input("owner/slug")` calls and literal /kaggle/... paths, for the rehearsal's checks
SOURCE_CALL = re.compile(r"""kaggle_input\(\s*["']([^"']+)["']\s*\)""")
KAGGLE_PATH = re.compile(r"""/kaggle/[^\s"'{}()\],;]*""")

_SETUP = '''\
# offlinepack kernel, written by `offlinepack kernel init`. Attached inputs are found under both Kaggle
# mount layouts; every step runs in a child Python and stops the notebook if it fails.
import json, os, subprocess, sys


def kaggle_input(source):
    """The folder of an attached source: 'owner/slug' (dataset), 'owner/model/framework/variation/version'
    (Kaggle Model) or a competition slug, with ':path/inside' for a path in it."""
    ref, _, inside = source.partition(":")
    parts = ref.split("/")
    if len(parts) == 2:
        places = [parts[1], "datasets/" + ref]
    elif len(parts) == 5:
        places = ["/".join(parts[1:]), "models/" + ref]
    else:
        places = [ref, "competitions/" + ref]
    for place in places:
        path = os.path.join("/kaggle/input", place)
        if os.path.isdir(path):
            return os.path.join(path, inside) if inside else path
    raise RuntimeError("%s is not attached (looked in /kaggle/input/%s): add it in the notebook's Input panel"
                       % (ref, " and /kaggle/input/".join(places)))


def step(*args, ok=(0,)):
    """Run one command, show its output as it comes, stop the notebook when its exit code is not in `ok`."""
    print("$", " ".join(args), flush=True)
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
        print(line, end="", flush=True)
    code = proc.wait()
    if code not in ok:
        raise RuntimeError("exit code %d (expected %s): %s" % (code, " or ".join(map(str, ok)), " ".join(args)))
    return code


WHEELS = kaggle_input(@WHEELS@)
MODELS = [@MODELS@]
RUN_ARGS = @RUN_ARGS@
SUBMISSION = @SUBMISSION@
'''

_INSTALL = '''\
# install the missing wheels (sha256-verified, no index); exit 1 = ready with degradations (e.g. no imagecodecs)
step(sys.executable, os.path.join(WHEELS, "bootstrap.py"), ok=(0, 1))
# bootstrap's fallback install folder when site-packages is read-only: child Pythons must see it too
if os.path.isdir("/kaggle/working/.offlinepack-site"):
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, ["/kaggle/working/.offlinepack-site",
                                                              os.environ.get("PYTHONPATH")]))
'''

_DOCTOR = '''\
# every readiness check (GPU, CUDA, packages, TIFF codecs, models, output folder); exit 2 = not ready
step(sys.executable, "-m", "offlinepack", "doctor", ok=(0, 1))
'''

_RUN = '''\
# inference -> post-processing -> validated submission.zip -> ledger record
model_args = [arg for model in MODELS for arg in ("--model", model)]
step(sys.executable, os.path.join(WHEELS, "bootstrap.py"), "run", *model_args, *RUN_ARGS, "-o", SUBMISSION)
'''

_VALIDATE = '''\
# the scorer's format: every test id once, (Z,H,W) uint8 {0,1} TIFFs that Pillow reads
step(sys.executable, "-m", "offlinepack", "validate", SUBMISSION)
'''

_LEDGER = '''\
# the run's record: models (with their pack manifest), wheelhouse, environment, per-volume timings
with open(os.path.join(os.path.dirname(SUBMISSION), "offlinepack-runs.jsonl"), encoding="utf-8") as handle:
    runs = [json.loads(line) for line in handle if line.strip()]
record = [r for r in runs if r.get("type") == "run"][-1]
print(json.dumps({key: record.get(key) for key in ("run_id", "status", "exit_code", "submission", "model_packs",
                                                   "wheelhouse", "seconds")}, indent=1))
print("models:", [m["path"] for m in record.get("models", [])])
'''


@dataclass(frozen=True, kw_only=True, slots=True)
class NotebookPlan:
    title: str
    wheels: Source
    models: tuple[Source, ...]
    competition: Source | None
    run_args: tuple[str, ...]


def _ref(source: Source) -> str:
    return source.ref + (f":{source.inside}" if source.inside else "")


def _cell(kind: str, text: str, index: int) -> dict[str, Any]:
    cell: dict[str, Any] = {"cell_type": kind, "id": f"offlinepack-{index}", "metadata": {},
                            "source": text.splitlines(keepends=True)}
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def build_notebook(plan: NotebookPlan) -> dict[str, Any]:
    """The notebook as nbformat 4.5 JSON (a dict)."""
    models = ", ".join(f"kaggle_input({_ref(m)!r})" for m in plan.models)
    setup = (_SETUP.replace("@WHEELS@", repr(_ref(plan.wheels))).replace("@MODELS@", models)
             .replace("@RUN_ARGS@", repr(list(plan.run_args))).replace("@SUBMISSION@", repr(SUBMISSION)))
    inputs = "\n".join(f"- {s.kind}: `{_ref(s)}`" for s in (plan.wheels, *plan.models, *filter(None, [plan.competition])))
    intro = (f"# {plan.title}\n\nWritten by `offlinepack kernel init`; rehearse it with `offlinepack rehearse` before "
             f"pushing. Internet off. Inputs:\n\n{inputs}\n")
    cells = [_cell("markdown", intro, 0)]
    for i, text in enumerate((setup, _INSTALL, _DOCTOR, _RUN, _VALIDATE, _LEDGER), start=1):
        cells.append(_cell("code", text, i))
    return {
        "cells": cells,
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                     "language_info": {"name": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def notebook_json(plan: NotebookPlan) -> str:
    return json.dumps(build_notebook(plan), indent=1) + "\n"


def read_notebook(path: Path) -> dict[str, Any]:
    """A notebook file as JSON, checked to be nbformat 4 with cells whose source is text."""
    data = read_json(path, "notebook ", hint="write it with `offlinepack kernel init`")
    if not isinstance(data, dict) or data.get("nbformat") != 4 or not isinstance(data.get("cells"), list):
        raise OfflinepackError(f"{path} is not an nbformat 4 notebook", hint="write it with `offlinepack kernel init`")
    return data


def cell_source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def code_cells(notebook: dict[str, Any]) -> list[tuple[int, str]]:
    """(cell number counted from 1 over all cells, source) of every code cell."""
    return [(i, cell_source(c)) for i, c in enumerate(notebook["cells"], start=1) if c.get("cell_type") == "code"]


def referenced_sources(sources: Sequence[str]) -> list[str]:
    """Every `kaggle_input("...")` argument in the given cell sources."""
    return [ref for text in sources for ref in SOURCE_CALL.findall(text)]
