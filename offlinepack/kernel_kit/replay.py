"""Execute a notebook's cells in order with a real Jupyter kernel; run inside the rehearsal sandbox.

    python -m offlinepack.kernel_kit.replay SPEC.json

SPEC: {"notebook", "report", "working", "jupyter_path", "env", "timeout", "rewrite_root", "probe"}. Writes
REPORT: one entry per code cell (seconds, status ok|error|skipped, the last output lines, the error)
and stops at the first failing cell, as Kaggle's "Save & Run All" does; when every cell passed, runs SPEC's "probe" code in the same
kernel (not recorded in the notebook); the executed notebook (every
output) is written beside REPORT as notebook.executed.ipynb.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

TAIL_LINES = 12
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _text_of(output: Any) -> str:
    kind = output.get("output_type")
    if kind == "stream":
        return output.get("text", "")
    if kind == "error":
        return f"{output.get('ename')}: {output.get('evalue')}\n"
    data = output.get("data", {})
    return data.get("text/plain", "") + ("\n" if data.get("text/plain") else "")


def _tail(outputs: list[Any]) -> list[str]:
    text = _ANSI.sub("", "".join(_text_of(o) for o in outputs))
    lines = [line.rsplit("\r", 1)[-1] for line in text.splitlines()]  # progress bars redraw with \r
    return [line for line in lines if line.strip()][-TAIL_LINES:]


def _first_line(source: str) -> str:
    """The cell's first line of code (comments skipped), to name it in the report."""
    code = [line for line in source.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return (code[0] if code else source.strip().split("\n", 1)[0])[:80]


def replay(spec: dict[str, Any]) -> list[dict[str, Any]]:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    os.environ["JUPYTER_PATH"] = spec["jupyter_path"]
    os.environ.setdefault("JUPYTER_RUNTIME_DIR", str(Path(spec["runtime_dir"])))
    notebook = nbformat.read(spec["notebook"], as_version=4)
    root = spec.get("rewrite_root")
    if root:  # fallback layout: the cells' /kaggle paths point into the fallback root
        for cell in notebook.cells:
            cell.source = cell.source.replace("/kaggle/", root.rstrip("/") + "/")
    client = NotebookClient(notebook, kernel_name="offlinepack-rehearsal", timeout=spec.get("timeout", 1800),
                            startup_timeout=120, resources={"metadata": {"path": spec["working"]}})
    results: list[dict[str, Any]] = []
    failed = False
    with client.setup_kernel(env=spec["env"], cwd=spec["working"]):
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type != "code":
                continue
            entry: dict[str, Any] = {"cell": index + 1, "first_line": _first_line(cell.source)}
            if failed:
                results.append({**entry, "status": "skipped", "seconds": 0.0, "tail": [], "error": None})
                continue
            started = time.perf_counter()
            error = None
            try:
                client.execute_cell(cell, index)
                status = "ok"
            except CellTimeoutError as exc:
                status, error = "error", f"timed out: {str(exc).splitlines()[0]}"
            except CellExecutionError as exc:
                status, error = "error", f"{exc.ename}: {exc.evalue}"
            failed = status != "ok"
            results.append({**entry, "status": status, "seconds": round(time.perf_counter() - started, 2),
                            "tail": _tail(cell.get("outputs", [])), "error": error})
        if not failed and spec.get("probe"):
            # where the kernel's child Pythons import offlinepack from (shipped_wheel.py); not part of the notebook
            probe = nbformat.v4.new_code_cell(spec["probe"])
            notebook.cells.append(probe)
            try:
                client.execute_cell(probe, len(notebook.cells) - 1, store_history=False)
            except (CellExecutionError, CellTimeoutError):
                pass  # no report: the rehearsal says so
            notebook.cells.pop()
    # the notebook with its outputs, for a look at everything a cell printed
    nbformat.write(notebook, str(Path(spec["report"]).with_name("notebook.executed.ipynb")))
    return results


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    spec = json.loads(Path(args[0]).read_text())
    try:
        results = replay(spec)
        report = {"cells": results, "error": None}
    except Exception as exc:  # noqa: BLE001 - the kernel did not start: reported to the rehearsal, not a traceback
        report = {"cells": [], "error": f"{type(exc).__name__}: {exc}"}
    Path(spec["report"]).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
