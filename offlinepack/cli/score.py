"""`offlinepack score PRED --labels DIR`: the leaderboard score of masks against labels, per volume and the mean.

Exit codes: 0 scored, 2 could not score (missing labels, shape mismatch, unreadable files, scorer deps missing).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from offlinepack.cli.options import split_values
from offlinepack.cli.output import console, err_console, print_json, reports_errors
from offlinepack.errors import OfflinepackError


def _need_scorer() -> None:
    missing = []
    for module, dist in (("numba", "numba"), ("scipy", "scipy"), ("skimage", "scikit-image"), ("PIL", "pillow")):
        try:
            __import__(module)
        except ImportError:
            missing.append(dist)
    if missing:
        raise OfflinepackError(f"scoring needs {', '.join(missing)}, not installed here",
                               hint="pip install 'offlinepack[score]' (a Kaggle image has them all)")


@reports_errors
def score(
    predictions: Annotated[Path, typer.Argument(metavar="PRED", help="submission.zip, or a folder of <id>.tif masks.")],
    labels: Annotated[Path, typer.Option("--labels", "-l", help="Folder of <id>.tif labels (train_labels/), or a competition folder holding train_labels/.")],
    ids: Annotated[Optional[list[str]], typer.Option("--ids", help="Score only these ids (comma-separated or repeated).")] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", "-w", min=1, help="Worker processes [all CPUs].")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object: the mean score and every volume's components.")] = False,
) -> None:
    """Score predicted masks against labels with the competition's metric (TopoScore, SurfaceDice@2, VOI).

    Label 2 is ignored, each volume clipped to [0, 1], then the mean. Every mask needs a label of the same shape."""
    from offlinepack.score.metric import default_workers

    _need_scorer()
    from offlinepack.score.batch import score_pairs
    from offlinepack.score.files import find_score_inputs

    inputs = find_score_inputs(predictions, labels, split_values(ids, str, "--ids"))
    workers = workers or default_workers()
    results = {}
    # imported here: every command module is imported at start-up, and rich.progress is slow to import
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.description}"), console=err_console, transient=True) as bar:
        task = bar.add_task("", total=len(inputs.pairs))
        for scored in score_pairs(inputs.pairs, workers=workers):
            results[scored.id] = scored
            bar.update(task, advance=1, description=f"{scored.id} {scored.result.score:.4f}")
    ordered = [results[pair.id] for pair in inputs.pairs]
    mean = sum(s.result.score for s in ordered) / len(ordered)
    if as_json:
        print_json({"score": mean, "predictions": str(inputs.predictions), "labels": str(inputs.labels),
                    "volumes": [s.to_dict() for s in ordered]})
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for column in ("id", "score", "TopoScore", "SurfaceDice", "VOI", "seconds"):
        table.add_column(column, justify="left" if column == "id" else "right")
    for s in ordered:
        r = s.result
        table.add_row(s.id, f"{r.score:.6f}", f"{r.topo_score:.6f}", f"{r.surface_dice:.6f}", f"{r.voi_score:.6f}",
                      f"{s.seconds:.1f}")
    console.print(table)
    console.print(f"mean score: {mean:.6f} over {len(ordered)} volume(s)", markup=False)
