"""`offlinepack ablate`: each ensemble member's real contribution on labelled volumes (leave one out).

Exit codes: 0 reported; 2 bad input (a model or folder missing, maps and labels that do not pair).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from offlinepack import kaggle
from offlinepack.cli.options import split_values
from offlinepack.cli.output import console, err_console, print_json, reports_errors


@reports_errors
def ablate(
    model: Annotated[list[str], typer.Option("--model", "-m", help="Ensemble member (repeat; 'demo' = bundled U-Net).")],
    input_dir: Annotated[Path, typer.Option("--input", "-i", help="Labelled images: a folder of <id>.tif (train_images/).", file_okay=False)],
    labels: Annotated[Path, typer.Option("--labels", "-l", help="Label volumes <id>.tif (train_labels/) or the competition folder.", file_okay=False)],
    weights: Annotated[Optional[list[str]], typer.Option("--weights", help="Ensemble weights, one per model.")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="run.toml whose [post] (e.g. calibrated.toml) and [inference] are used.", dir_okay=False)] = None,
    root: Annotated[Path, typer.Option("--probabilities-root", help="Where each model's maps are saved and reused [./ablation-probabilities].", file_okay=False)] = Path("ablation-probabilities"),
    budget: Annotated[Optional[float], typer.Option("--budget-seconds-per-volume", help="Recommend the best subset whose inference fits this.")] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", help="Local scoring processes [all CPUs].")] = None,
    scheduler: Annotated[Optional[str], typer.Option("--scheduler", help="Dask scheduler address instead of local processes.")] = None,
    ledger: Annotated[Optional[Path], typer.Option("--ledger", help="Record the ablation here [offlinepack-runs.jsonl in the cwd].", dir_okay=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Measure what each model of an ensemble adds: leave-one-out scores, time shares, the best subset.

    Runs each model once (maps saved, reused when the model files match), then scores the full ensemble
    and each leave-one-out with the same post-processing: each model's contribution with a bootstrap 95 %
    interval over volumes, its share of inference time, and the best subset under a time budget."""
    from offlinepack.calibrate import open_pool
    from offlinepack.calibrate.ablation import ablate as run_ablation, predict_members
    from offlinepack.ledger import record_result
    from offlinepack.ledger import new_run_id, utc_now
    from offlinepack.run import RunConfig, load_run_toml

    started = utc_now()
    base = load_run_toml(config) if config else RunConfig()
    say = (lambda message: None) if as_json else (lambda message: err_console.print(message, markup=False))
    members = predict_members(model, input_dir, root, inference=base.inference, kaggle_root=kaggle.kaggle_root(),
                              progress=say)
    pool = open_pool(scheduler, workers)
    try:
        result = run_ablation(members, labels, weights=split_values(weights, float, "--weights"), post=base.post,
                              budget_seconds_per_volume=budget, pool=pool)
    finally:
        pool.close()
    ident = new_run_id()
    ledger_path = ledger or kaggle.ledger_in(Path.cwd())
    harmful = [c.name for c in result.contributions if c.verdict == "harmful"]
    summary = (f"full {result.full.mean:.4f}; recommended {'+'.join(result.recommended or ()) or 'none'}"
               + (f"; harmful: {', '.join(harmful)}" if harmful else ""))
    record_result(ledger_path, "ablation", ident, {"started": started, "finished": utc_now(), "status": "ok",
                                                       "volumes": list(result.volumes), "summary": summary,
                                                       "config": str(config) if config else None,
                                                       "result": result.to_dict()})
    if as_json:
        print_json({"ablation_id": ident, "ledger": str(ledger_path), **result.to_dict()})
        return
    console.print(f"full ensemble ({len(result.members)} models, {len(result.volumes)} volumes): {result.full}",
                  markup=False)
    for contribution, member in zip(result.contributions, result.members):
        share = ("time unknown" if contribution.time_share is None
                 else f"{contribution.time_share:.0%} of inference time")
        console.print(f"  {contribution.name}: score drop when left out {contribution.drop} -> "
                      f"{contribution.verdict}; {share}{' (maps reused)' if member.reused else ''}", markup=False)
    if result.recommended is None:
        console.print(f"no subset fits {budget} s per volume", markup=False)
    else:
        console.print(f"recommended subset{f' within {budget} s per volume' if budget else ''}: "
                      f"{' + '.join(result.recommended)}", markup=False)
    console.print(f"ablation {ident} recorded in {ledger_path}", markup=False)
