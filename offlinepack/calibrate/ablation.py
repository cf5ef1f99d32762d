"""`ablate`: what each ensemble member really adds, on labelled volumes.

1. Each model runs once on the labelled images through `offlinepack run` (`--save-probabilities` into
   `<root>/<name>-<sha8>/`), its inference seconds per volume kept beside the maps; a folder whose maps
   came from the same model files (sha256) and cover every volume is reused, not recomputed.
2. The full ensemble (weighted mean of the members' saved maps) and every leave-one-out ensemble (the
   other weights renormalised) are post-processed the same way (the calibrated [post] when given) and
   scored; a member's contribution is the per-volume score drop when it is left out, with a bootstrap
   95 % interval: "harmful" when the whole interval is below 0, "helps" when above, else "unclear".
3. Every subset of members (up to 8 members) is scored too, and the best one whose summed inference
   time per volume fits `budget_seconds_per_volume` is recommended (ties: the cheaper one).

Note: members are averaged from their saved (rounded) maps, which differs from the engine's in-memory
ensemble by at most the rounding (1/510 with uint8 maps).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from offlinepack.calibrate import stats
from offlinepack.calibrate.labelled import pair_with_labels
from offlinepack.calibrate.tasks import leaderboard_score, score_settings
from offlinepack.atomic import write_text_atomically
from offlinepack.errors import OfflinepackError
from offlinepack.files import read_json
from offlinepack.post import PostConfig
from offlinepack.probabilities import ProbabilitySet, ProbabilityWriter, open_probabilities

TIMING_NAME = "inference-seconds.json"
MAX_SUBSET_MEMBERS = 8


@dataclass(frozen=True)
class Member:
    name: str
    model: str
    sha256: str
    folder: Path
    reused: bool
    seconds_per_volume: float | None


@dataclass(frozen=True)
class Contribution:
    name: str
    drop: stats.Interval  # full ensemble score - score without this member
    time_share: float | None
    verdict: str  # "helps" | "harmful" | "unclear"


@dataclass(frozen=True)
class AblationResult:
    members: tuple[Member, ...]
    weights: tuple[float, ...]
    full: stats.Interval
    contributions: tuple[Contribution, ...]
    subsets: tuple[tuple[tuple[str, ...], float, float | None], ...]  # (names, mean score, seconds/volume)
    recommended: tuple[str, ...] | None
    budget_seconds_per_volume: float | None
    post: PostConfig
    volumes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "members": [{"name": m.name, "model": m.model, "sha256": m.sha256, "probabilities": str(m.folder),
                         "reused": m.reused, "seconds_per_volume": m.seconds_per_volume} for m in self.members],
            "weights": list(self.weights), "full": self.full.to_dict(),
            "contributions": [{"name": c.name, "drop": c.drop.to_dict(), "time_share": c.time_share,
                               "verdict": c.verdict} for c in self.contributions],
            "subsets": [{"members": list(n), "score": round(s, 6), "seconds_per_volume": t}
                        for n, s, t in self.subsets],
            "recommended": list(self.recommended) if self.recommended is not None else None,
            "budget_seconds_per_volume": self.budget_seconds_per_volume, "post": self.post.to_dict(),
            "volumes": list(self.volumes),
        }


def _model_hash(model: str) -> tuple[Path, str]:
    from offlinepack.demo import DEMO_CHECKPOINT
    from offlinepack.ledger import model_files
    from offlinepack.run.config import DEMO_MODEL

    path = DEMO_CHECKPOINT if model == DEMO_MODEL else Path(model)
    if not path.exists():
        raise OfflinepackError(f"model path {path} does not exist")
    return path, _combined(f["sha256"] for f in model_files([path]))


def _combined(hashes: Iterable[str]) -> str:
    """One digest for a model's files, whatever their order: what saved maps record and are matched by."""
    import hashlib

    return hashlib.sha256("".join(sorted(hashes)).encode()).hexdigest()


def _reusable(folder: Path, digest: str, ids: Sequence[str], dtype: str) -> ProbabilitySet | None:
    try:
        saved = open_probabilities(folder)
    except OfflinepackError:
        return None
    if _combined(saved.model_hashes()) != digest or saved.meta.get("dtype") != dtype or set(ids) - set(saved.ids):
        return None
    return saved


def predict_members(
    models: Sequence[str], input_dir: Path, root: Path, *, inference: dict[str, Any] | None = None,
    dtype: str = "uint8", kaggle_root: Path = Path("/kaggle"), progress: Callable[[str], None] | None = None,
) -> list[tuple[Member, ProbabilitySet]]:
    """Each model's maps on the labelled images: reused when saved from the same files, else computed."""
    from offlinepack.run import RunConfig, run_pipeline
    from offlinepack.volumes import find_inputs

    say = progress or (lambda message: None)
    ids = [ref.id for ref in find_inputs(input_dir, kaggle_root=kaggle_root).volumes]
    out = []
    names: set[str] = set()
    for model in models:
        path, digest = _model_hash(model)
        name = path.stem if path.is_file() else path.name
        while name in names:
            name += "'"
        names.add(name)
        folder = Path(root) / f"{name}-{digest[:8]}"
        saved = _reusable(folder, digest, ids, dtype)
        reused = saved is not None
        if saved is None:
            say(f"{name}: inference on {len(ids)} volume(s) -> {folder}")
            config = RunConfig(models=(model,), input=Path(input_dir), output=folder / "submission.zip",
                               inference=dict(inference or {}), overwrite=True)
            report = run_pipeline(config, kaggle_root=kaggle_root, check_ready=False,
                                  save_probabilities=ProbabilityWriter(folder, dtype))
            if report.failures:
                raise OfflinepackError(f"model {model}: inference failed on {len(report.failures)} volume(s)",
                                       problems=[f"{i}: {why}" for i, why in report.failures])
            seconds = {v.id: float(v.seconds.get("inference", 0.0)) for v in report.volumes}
            write_text_atomically(folder / TIMING_NAME, json.dumps(seconds, indent=1))
            saved = open_probabilities(folder)
        else:
            say(f"{name}: maps reused from {folder} (same model files)")
        timing_path = folder / TIMING_NAME
        per_volume = None
        if timing_path.is_file():
            timing = read_json(timing_path)
            per_volume = float(np.mean([timing[i] for i in ids if i in timing])) if timing else None
        out.append((Member(name, str(model), digest, folder, reused, per_volume), saved))
    return out


def _verdict(drop: stats.Interval) -> str:
    if drop.high < 0.0:
        return "harmful"
    if drop.low > 0.0:
        return "helps"
    return "unclear"


def ablate(
    members: Sequence[tuple[Member, ProbabilitySet]],
    labels: Path,
    *,
    weights: Sequence[float] | None = None,
    post: PostConfig = PostConfig(),
    budget_seconds_per_volume: float | None = None,
    pool: Any = None,
    scorer: Callable[[np.ndarray, np.ndarray], float] = leaderboard_score,
    seed: int = 0,
) -> AblationResult:
    """Score the ensemble, every leave-one-out and every subset (see the module doc)."""
    from offlinepack.calibrate.tasks import LocalPool

    if len(members) < 2:
        raise OfflinepackError("ablation needs at least 2 models", hint="pass --model once per ensemble member")
    weights = tuple(float(w) for w in (weights or [1.0] * len(members)))
    if len(weights) != len(members) or any(w < 0 for w in weights) or not sum(weights) > 0:
        raise OfflinepackError(f"--weights {list(weights)}: need one weight >= 0 per model, not all 0")
    names = [m.name for m, _ in members]
    count = len(members)
    if count <= MAX_SUBSET_MEMBERS:
        subsets = [s for k in range(1, count + 1) for s in itertools.combinations(range(count), k)]
    else:  # the full ensemble and each leave-one-out only
        subsets = [tuple(range(count))] + [tuple(j for j in range(count) if j != i) for i in range(count)]
    subsets = [s for s in subsets if sum(weights[i] for i in s) > 0]
    sets = {s: pair_with_labels([(members[i][1], weights[i]) for i in s], labels) for s in subsets}
    ids = [item.id for item in sets[tuple(range(count))].items]
    if any([item.id for item in ls.items] != ids for ls in sets.values()):
        raise OfflinepackError("the members' maps cover different volumes",
                               hint="run every model on the same labelled images")
    own_pool = pool is None
    pool = pool or LocalPool()
    tasks, where = [], []
    for s, labelled in sets.items():
        for column, item in enumerate(labelled.items):
            tasks.append((item, [post], scorer))
            where.append((s, column))
    scores = {s: np.full(len(ids), np.nan) for s in subsets}
    try:
        for index, values in pool.run(score_settings, tasks):
            s, column = where[index]
            scores[s][column] = values[0]
    finally:
        if own_pool:
            pool.close()
    full_key = tuple(range(count))
    full = scores[full_key]
    seconds = [m.seconds_per_volume for m, _ in members]
    total = sum(seconds) if all(t is not None for t in seconds) else None
    contributions = []
    for i, (member, _) in enumerate(members):
        without = tuple(j for j in range(count) if j != i)
        drop = stats.bootstrap(full - scores[without], seed) if without in scores else stats.Interval(
            float("nan"), float("nan"), float("nan"))
        share = (seconds[i] / total) if total else None
        contributions.append(Contribution(member.name, drop, share, _verdict(drop)))

    def cost(s: tuple[int, ...]) -> float | None:
        return sum(seconds[i] for i in s) if total is not None else None

    table = sorted(((tuple(names[i] for i in s), float(scores[s].mean()), cost(s)) for s in subsets),
                   key=lambda row: (-row[1], row[2] if row[2] is not None else 0.0, len(row[0])))
    fitting = [row for row in table if budget_seconds_per_volume is None
               or (row[2] is not None and row[2] <= budget_seconds_per_volume)]
    recommended = fitting[0][0] if fitting else None
    return AblationResult(tuple(m for m, _ in members), weights, stats.bootstrap(full, seed), tuple(contributions),
                          tuple(table), recommended, budget_seconds_per_volume, post, tuple(ids))


def with_member_names(members: Sequence[tuple[Member, ProbabilitySet]], names: Sequence[str]):
    """Members renamed (tests, and users who pass maps they saved themselves)."""
    return [(replace(m, name=n), s) for (m, s), n in zip(members, names)]
