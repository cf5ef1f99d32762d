"""`offlinepack calibrate`: fit post-processing on labelled volumes' saved maps; write a run.toml fragment.

Exit codes: 0 written; 2 bad input (no maps, no labels, shapes differ, bad option).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from offlinepack.cli.output import console, err_console, print_json, reports_errors


def pool_options(workers: int | None, scheduler: str | None):
    from offlinepack.calibrate import open_pool

    return open_pool(scheduler, workers)


@reports_errors
def calibrate(
    probabilities: Annotated[Path, typer.Option("--probabilities", "-p", help="Saved maps of labelled volumes (run --save-probabilities).", file_okay=False)],
    labels: Annotated[Path, typer.Option("--labels", "-l", help="Label volumes <id>.tif (train_labels/) or the competition folder.", file_okay=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="run.toml fragment to write ([post] only).", dir_okay=False)] = Path("calibrated.toml"),
    search: Annotated[str, typer.Option("--search", help="grid | random | bayes [grid].")] = "grid",
    budget: Annotated[int, typer.Option("--budget", help="Settings to score at most [200].")] = 200,
    strategy: Annotated[str, typer.Option("--strategy", help="halving (screen all settings with SurfaceDice+VOI, score the finalists exactly) | exhaustive (score every setting exactly) | auto: halving when exhaustive would exceed ~100 evaluations of 320^3.")] = "auto",
    finalists: Annotated[int, typer.Option("--finalists", help="Halving: distinct settings per group (global thresholds, per-volume rules) and fold scored exactly on every volume [3].")] = 3,
    folds: Annotated[int, typer.Option("--folds", help="K of the K-fold cross-validation [5].")] = 5,
    workers: Annotated[Optional[int], typer.Option("--workers", help="Local processes [all CPUs].")] = None,
    scheduler: Annotated[Optional[str], typer.Option("--scheduler", help="Dask scheduler address (tcp://HOST:PORT) instead of local processes.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of folds, volume order and random proposals [0].")] = 0,
    early_stop: Annotated[bool, typer.Option("--early-stop/--no-early-stop", help="Exhaustive strategy: drop settings that cannot win before scoring them on every volume.")] = True,
    ledger: Annotated[Optional[Path], typer.Option("--ledger", help="Record the calibration here [offlinepack-runs.jsonl beside -o].", dir_okay=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Search post-processing settings that maximise the mean local score, cross-validated.

    Reports the K-fold cross-validated score (settings fitted on K-1 folds, scored on the held-out one) beside
    the in-sample and the defaults' scores, each with a bootstrap 95 % interval over volumes.
    """
    from offlinepack.calibrate import CalibrationProgress, calibrate as run_calibration, pair_with_labels
    from offlinepack.calibrate.halving import HalvingPlan
    from offlinepack.calibrate.search import write_calibrated_toml
    from offlinepack import kaggle
    from offlinepack.ledger import new_run_id, record_result, utc_now
    from offlinepack.probabilities import open_probabilities

    started = utc_now()
    saved = open_probabilities(probabilities)
    labelled = pair_with_labels([(saved, 1.0)], labels)

    def progress(event: CalibrationProgress) -> None:
        if not as_json and event.event == "round":
            err_console.print(event.message or f"scored {event.alive} live setting(s) of {event.settings} on "
                              f"{event.volumes_done}/{event.volumes} volume(s)", markup=False)

    pool = pool_options(workers, scheduler)
    try:
        result = run_calibration(labelled, search=search, budget=budget, folds=folds, pool=pool, seed=seed,
                                 early_stop=early_stop, progress=progress, strategy=strategy,
                                 halving=HalvingPlan(finalists=finalists, max_finalists=4 * finalists))
    finally:
        pool.close()
    ledger_path = ledger or kaggle.ledger_in(output.parent)
    ident = new_run_id()
    write_calibrated_toml(result, output, {"calibration_id": ident})
    from offlinepack.hashing import sha256_file

    summary = (f"cv {result.cv.mean:.4f} vs defaults {result.defaults.mean:.4f}"
               + ("" if result.gain_is_significant else " (gain inside the interval)"))
    record_result(ledger_path, "calibration", ident, {
        "started": started, "finished": utc_now(), "status": "ok",
        "output": str(output), "output_sha256": sha256_file(output), "post": result.post.to_dict(),
        "probabilities": {"folder": str(saved.folder), "sha256": saved.fingerprint(), "models": saved.models},
        "labels": str(labelled.labels_dir), "volumes": list(result.volumes), "summary": summary,
        "result": result.to_dict(),
    })
    if as_json:
        print_json({"calibration_id": ident, "output": str(output), "ledger": str(ledger_path), **result.to_dict()})
        return
    if result.strategy == "halving":
        console.print(f"{len(result.volumes)} volume(s), {result.settings_scored} setting(s) screened, halving: "
                      + "; ".join(f"{r.name} {r.settings}x{r.volumes} ({r.evaluations} evaluations)" for r in result.rungs)
                      + f"; {result.seconds:.1f} s on {result.pool.get('kind')} x{result.pool.get('workers')}",
                      markup=False)
    else:
        console.print(f"{len(result.volumes)} volume(s), {result.settings_scored} setting(s) scored "
                      f"({result.dropped_early} stopped early, {result.evaluations} evaluations, {result.seconds:.1f} s "
                      f"on {result.pool.get('kind')} x{result.pool.get('workers')})", markup=False)
    console.print(f"cross-validated ({result.folds}-fold): {result.cv}", markup=False)
    console.print(f"in-sample:                {result.in_sample}", markup=False)
    console.print(f"defaults:                 {result.defaults}", markup=False)
    console.print(f"gain over defaults (cv):  {result.gain}", markup=False)
    rule = (f"per-volume rule {result.best.get('threshold_rule')} chosen: cv {result.rule_cv} beats global "
            f"threshold {result.fixed_cv}" if result.rule_chosen else
            f"global threshold kept: cv {result.fixed_cv}"
            + (f" (per-volume rules: {result.rule_cv})" if result.rule_cv else ""))
    console.print(rule, markup=False)
    console.print(result.verdict(), markup=False)
    for caveat in result.caveats:
        console.print(f"note: {caveat}", markup=False)
    console.print(f"wrote {output} (use: offlinepack run --config {output} ...); calibration {ident} recorded in "
                  f"{ledger_path}", markup=False)
