"""What `calibrate` searches: post-processing settings as small dicts, and how candidates are proposed.

A setting is a dict of PostConfig keys (plus `hysteresis_ratio`: the low threshold as a share of the
threshold, so the pair stays valid). Settings are canonical: a per-volume rule setting carries no global
threshold, and a step that is off carries no parameters, so equal masks come from equal settings.

- grid: the winners' main knobs fully crossed: the threshold (0.10-0.90 by 0.05) or a per-volume rule's
  parameter, times the smallest component size; the other steps stay at their defaults;
- random: `budget` settings drawn uniformly from every dimension;
- bayes: a simple sequential model-based search (no library): an additive surrogate (mean score of the
  settings holding each value of each dimension, plus an upper-confidence bonus for rarely tried values)
  ranks random candidates; each round evaluates the best-ranked ones, then the surrogate is refitted.

Component sizes are given for 320^3 volumes and scaled to the labelled volumes' size (winners: ~20k voxels).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from offlinepack.post import PostConfig

SEARCHES = ("grid", "random", "bayes")
REFERENCE_VOXELS = 320**3
THRESHOLDS = tuple(round(0.10 + 0.05 * i, 2) for i in range(17))
FRACTIONS = (0.005, 0.01, 0.015, 0.02, 0.03, 0.04, 0.06, 0.08, 0.12)
FACTORS = tuple(round(0.20 + 0.05 * i, 2) for i in range(15))
COMPONENT_SIZES_320 = (0, 1000, 5000, 20000, 50000)
CLOSING_RADII = (0, 1, 2)
FILL_MODES = ("3d", "none")
HYSTERESIS_RATIOS = (None, 0.6, 0.8)
FAMILIES = ("fixed", "foreground_fraction", "relative_quantile")

Setting = dict[str, Any]
_DEFAULTS: Setting = {k: v for k, v in PostConfig().to_dict().items()
                      if k in ("threshold", "threshold_rule", "foreground_fraction", "rule_factor",
                               "min_component_voxels", "closing_radius", "fill_holes", "plug_holes")}


def component_sizes(volume_voxels: float) -> tuple[int, ...]:
    """The component-size grid scaled from 320^3 to the labelled volumes' mean size."""
    scale = volume_voxels / REFERENCE_VOXELS
    return tuple(sorted({int(round(size * scale)) for size in COMPONENT_SIZES_320}))


def canonical(setting: Mapping[str, Any]) -> Setting:
    """Drop parameters that do not act (rule parameters under another rule, hysteresis off, ...)."""
    out = {**_DEFAULTS, **setting}
    rule = out["threshold_rule"]
    if rule != "fixed":
        out["threshold"] = 0.5  # the rule sets the threshold; 0.5 only scales a hysteresis ratio
    if rule != "foreground_fraction":
        out.pop("foreground_fraction", None)
    if rule != "relative_quantile":
        out.pop("rule_factor", None)
    if out.get("hysteresis_ratio") is None:
        out.pop("hysteresis_ratio", None)
    if out.get("fill_holes", "3d") != "3d":
        out.pop("max_hole_voxels", None)
    return {k: out[k] for k in sorted(out)}


def key(setting: Mapping[str, Any]) -> str:
    return json.dumps(canonical(setting), sort_keys=True)


def family(setting: Mapping[str, Any]) -> str:
    return str(setting.get("threshold_rule", "fixed"))


def to_post(setting: Mapping[str, Any], base: PostConfig = PostConfig()) -> PostConfig:
    """A setting -> PostConfig (keys it does not set keep `base`'s values)."""
    values = {**base.to_dict(), **{k: v for k, v in setting.items() if k != "hysteresis_ratio"}}
    if "hysteresis_ratio" in setting:  # absent: `base`'s hysteresis (None by default) stays
        ratio = setting["hysteresis_ratio"]
        values["hysteresis_low"] = round(ratio * values["threshold"], 4) if ratio else None
    return PostConfig.from_mapping(values)


def defaults_setting(base: PostConfig = PostConfig()) -> Setting:
    data = base.to_dict()
    setting = {k: data[k] for k in ("threshold", "min_component_voxels", "fill_holes", "threshold_rule",
                                    "foreground_fraction", "rule_factor", "closing_radius", "plug_holes")}
    if base.hysteresis_low:
        setting["hysteresis_ratio"] = base.hysteresis_low / base.threshold
    return canonical(setting)


def dimensions(volume_voxels: float) -> dict[str, tuple[Any, ...]]:
    """Every searched dimension and its values (random and bayes draw from these)."""
    return {
        "threshold_rule": FAMILIES,
        "threshold": THRESHOLDS,
        "foreground_fraction": FRACTIONS,
        "rule_factor": FACTORS,
        "min_component_voxels": component_sizes(volume_voxels),
        "closing_radius": CLOSING_RADII,
        "fill_holes": FILL_MODES,
        "plug_holes": (False, True),
        "hysteresis_ratio": HYSTERESIS_RATIOS,
    }


def grid(volume_voxels: float) -> list[Setting]:
    """Threshold (or rule parameter) x component size; the rest at defaults."""
    out: list[Setting] = []
    for size in component_sizes(volume_voxels):
        out += [canonical({"threshold": t, "min_component_voxels": size}) for t in THRESHOLDS]
        out += [canonical({"threshold_rule": "foreground_fraction", "foreground_fraction": f,
                           "min_component_voxels": size}) for f in FRACTIONS]
        out += [canonical({"threshold_rule": "relative_quantile", "rule_factor": r,
                           "min_component_voxels": size}) for r in FACTORS]
    return unique(out)


def unique(settings: Sequence[Mapping[str, Any]]) -> list[Setting]:
    seen: dict[str, Setting] = {}
    for setting in settings:
        seen.setdefault(key(setting), canonical(setting))
    return list(seen.values())


def random_settings(volume_voxels: float, count: int, rng: np.random.Generator,
                    exclude: set[str] = frozenset()) -> list[Setting]:
    """Up to `count` new distinct settings drawn uniformly per dimension."""
    dims = dimensions(volume_voxels)
    out: dict[str, Setting] = {}
    for _ in range(count * 50):
        if len(out) >= count:
            break
        setting = canonical({name: values[int(rng.integers(len(values)))] for name, values in dims.items()})
        k = key(setting)
        if k not in exclude:
            out.setdefault(k, setting)
    return list(out.values())


def propose_bayes(volume_voxels: float, history: Mapping[str, float], count: int,
                  rng: np.random.Generator, candidates: int = 2000) -> list[Setting]:
    """The next `count` settings: random candidates ranked by an additive surrogate with a UCB bonus."""
    tried = {k: json.loads(k) for k in history}
    if not tried:
        return random_settings(volume_voxels, count, rng)
    dims = dimensions(volume_voxels)
    overall = float(np.mean(list(history.values())))
    effects: dict[tuple[str, str], tuple[float, int]] = {}
    for k, setting in tried.items():
        for name in dims:
            cell = (name, json.dumps(setting.get(name)))
            total, n = effects.get(cell, (0.0, 0))
            effects[cell] = (total + history[k] - overall, n + 1)
    spread = float(np.std(list(history.values()))) or 0.01
    total_tried = len(tried)

    def surrogate(setting: Setting) -> float:
        value = overall
        for name in dims:
            total, n = effects.get((name, json.dumps(setting.get(name))), (0.0, 0))
            value += (total / n if n else 0.0) + spread * math.sqrt(math.log(total_tried + 1) / (n + 1))
        return value

    pool = random_settings(volume_voxels, candidates, rng, exclude=set(history))
    # also the one-step neighbours of the best settings so far: where an additive model is least wrong
    best = sorted(history, key=history.get, reverse=True)[:5]
    for k in best:
        for name, values in dims.items():
            for value in values:
                pool.append(canonical({**tried[k], name: value}))
    pool = [s for s in unique(pool) if key(s) not in history]
    pool.sort(key=surrogate, reverse=True)
    return pool[:count]
