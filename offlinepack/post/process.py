"""Thresholds, small connected components and holes, on numpy arrays (never torch).

Defaults are chosen for the bundled demo (a probability map from a small U-Net): threshold 0.5,
components under 1000 voxels dropped, 3D hole filling. Competition winners used thresholds around
0.2-0.4 and dropped components under ~20k voxels on 320^3 volumes: set them in run.toml.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from scipy import ndimage

from offlinepack.errors import OfflinepackError
from offlinepack.post.rules import THRESHOLD_RULES, probability_histogram, rule_threshold
from offlinepack.post.topology import close_per_sheet, filter_components, fill_small_cavities, plug_one_voxel_holes

FILL_MODES = ("3d", "2d", "none")
BACKENDS = ("auto", "cc3d", "scipy")
_FULL_26 = np.ones((3, 3, 3), dtype=bool)


class PostprocessError(OfflinepackError):
    """The probability map cannot be turned into a mask (NaN, wrong rank)."""


@dataclass(frozen=True)
class PostConfig:
    """Post-processing parameters; the run.toml `[post]` table holds the same keys."""

    threshold: float = 0.5
    hysteresis_low: float | None = None
    min_component_voxels: int = 1000
    fill_holes: str = "3d"
    components_backend: str = "auto"
    # the winners' topology steps and per-volume thresholds (post.topology, post.rules); all off by default
    threshold_rule: str = "fixed"
    foreground_fraction: float = 0.02
    rule_quantile: float = 0.999
    rule_factor: float = 0.5
    min_component_mean_probability: float = 0.0
    closing_radius: int = 0
    max_hole_voxels: int = 0
    plug_holes: bool = False

    def __post_init__(self) -> None:
        problems = []
        if not 0.0 < self.threshold < 1.0:
            problems.append(f"post.threshold must be between 0 and 1 (exclusive), got {self.threshold!r}")
        if self.hysteresis_low is not None and not 0.0 < self.hysteresis_low <= self.threshold:
            problems.append(
                f"post.hysteresis_low must be in (0, threshold={self.threshold}], got {self.hysteresis_low!r}"
            )
        if isinstance(self.min_component_voxels, bool) or not isinstance(self.min_component_voxels, int) or (
            self.min_component_voxels < 0
        ):
            problems.append(f"post.min_component_voxels must be an integer >= 0, got {self.min_component_voxels!r}")
        if self.fill_holes not in FILL_MODES:
            problems.append(f"post.fill_holes must be one of {', '.join(FILL_MODES)}, got {self.fill_holes!r}")
        if self.components_backend not in BACKENDS:
            problems.append(
                f"post.components_backend must be one of {', '.join(BACKENDS)}, got {self.components_backend!r}"
            )
        problems += self._topology_problems()
        if problems:
            raise OfflinepackError("invalid post-processing settings", problems=problems,
                                   hint="fix the values above (--threshold, --hysteresis-low, --min-component-voxels, "
                                        "--fill-holes, or [post] in run.toml)")

    def _topology_problems(self) -> list[str]:
        problems = []
        if self.threshold_rule not in THRESHOLD_RULES:
            problems.append(f"post.threshold_rule must be one of {', '.join(THRESHOLD_RULES)}, "
                            f"got {self.threshold_rule!r}")
        for name in ("foreground_fraction", "rule_quantile"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value < 1.0:
                problems.append(f"post.{name} must be between 0 and 1 (exclusive), got {value!r}")
        factor = self.rule_factor
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or factor <= 0:
            problems.append(f"post.rule_factor must be > 0, got {self.rule_factor!r}")
        floor = self.min_component_mean_probability
        if isinstance(floor, bool) or not isinstance(floor, (int, float)) or not 0.0 <= floor < 1.0:
            problems.append(f"post.min_component_mean_probability must be in [0, 1), got {floor!r}")
        for name in ("closing_radius", "max_hole_voxels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                problems.append(f"post.{name} must be an integer >= 0, got {value!r}")
        if not isinstance(self.plug_holes, bool):
            problems.append(f"post.plug_holes must be true or false, got {self.plug_holes!r}")
        return problems

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str = "post") -> PostConfig:
        """Build from a run.toml table; an unknown key is an error naming it."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise OfflinepackError(
                f"unknown key(s) in [{where}]: {', '.join(unknown)}",
                hint=f"known keys: {', '.join(sorted(known))}",
            )
        return cls(**dict(data))

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def components_backend(requested: str = "auto") -> str:
    """The labelling library that will be used: cc3d when importable (faster), else scipy."""
    if requested == "scipy":
        return "scipy"
    try:
        import cc3d  # noqa: F401
    except ImportError:
        if requested == "cc3d":
            raise OfflinepackError(
                "post.components_backend = 'cc3d' but connected-components-3d is not installed",
                hint="install connected-components-3d, or set components_backend = 'auto'",
            ) from None
        return "scipy"
    return "cc3d"


def _label(mask: np.ndarray, backend: str, connectivity: int = 26) -> tuple[np.ndarray, int]:
    """Labels 1..n (0 background) with 26- or 6-connectivity, the same partition with either library."""
    if backend == "cc3d":
        import cc3d

        labels, count = cc3d.connected_components(mask, connectivity=connectivity, return_N=True)
        return labels, int(count)
    structure = _FULL_26 if connectivity == 26 else ndimage.generate_binary_structure(3, 1)
    labels, count = ndimage.label(mask, structure=structure)
    return labels, int(count)


def threshold_mask(
    probability: np.ndarray, threshold: float, hysteresis_low: float | None = None, backend: str = "auto"
) -> np.ndarray:
    """Boolean mask: plain threshold, or hysteresis (weak regions kept when they touch a strong voxel)."""
    strong = probability >= threshold
    if hysteresis_low is None or hysteresis_low >= threshold:
        return strong
    weak = probability >= hysteresis_low
    labels, count = _label(weak, components_backend(backend))
    if count == 0:
        return strong
    keep = np.zeros(count + 1, dtype=bool)
    keep[np.unique(labels[strong])] = True
    keep[0] = False
    return keep[labels]


def remove_small_components(mask: np.ndarray, min_voxels: int, backend: str = "auto") -> np.ndarray:
    """Drop 26-connected components with fewer than `min_voxels` voxels."""
    if min_voxels <= 1 or not mask.any():
        return mask.astype(bool, copy=False)
    labels, count = _label(mask, components_backend(backend))
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    keep = sizes >= min_voxels
    keep[0] = False
    return keep[labels]


def fill_holes(mask: np.ndarray, mode: str = "3d", backend: str = "auto") -> np.ndarray:
    """Fill enclosed background: in 3D, or each Z slice alone ("2d"), or not at all.

    "3d" gives exactly scipy's `binary_fill_holes` (background 6-connected to the border stays), computed
    by labelling the background once: ~5x faster on 320^3 than scipy's iterated dilation.
    """
    if mode == "none":
        return mask
    if mode == "3d":
        if mask.all() or not mask.any():
            return mask.astype(bool, copy=False)
        labels, count = _label(~mask.astype(bool, copy=False), components_backend(backend), connectivity=6)
        outside = np.zeros(count + 1, dtype=bool)
        for face in (labels[0], labels[-1], labels[:, 0], labels[:, -1], labels[:, :, 0], labels[:, :, -1]):
            outside[np.unique(face)] = True
        outside[0] = False
        return ~outside[labels]
    if mode == "2d":
        out = np.empty_like(mask, dtype=bool)
        for z in range(mask.shape[0]):
            out[z] = ndimage.binary_fill_holes(mask[z])
        return out
    raise OfflinepackError(f"unknown hole-filling mode {mode!r}", hint=f"use one of {', '.join(FILL_MODES)}")


def postprocess(probability: np.ndarray, config: PostConfig = PostConfig()) -> np.ndarray:
    """Probability (Z,H,W) -> mask (Z,H,W) uint8 in {0,1}. Raises PostprocessError on NaN/inf or wrong rank."""
    if probability.ndim != 3:
        raise PostprocessError(f"probability map must be 3D (Z,H,W), got shape {probability.shape}")
    prob = probability if probability.dtype in (np.float16, np.float32, np.float64) else probability.astype(np.float32)
    if not np.isfinite(prob).all():
        bad = int(np.count_nonzero(~np.isfinite(prob)))
        raise PostprocessError(
            f"model output holds {bad} non-finite value(s) (NaN/inf)",
            hint="try precision = 'fp32' in [inference]; fp16 overflow is the usual cause",
        )
    histogram = probability_histogram(prob) if config.threshold_rule != "fixed" else None
    return postprocess_checked(prob, config, histogram)


def volume_threshold(config: PostConfig, histogram: np.ndarray | None) -> tuple[float, float | None]:
    """(threshold, hysteresis low) for one volume: the config's, or its rule's from the volume's histogram."""
    if config.threshold_rule == "fixed" or histogram is None:
        return config.threshold, config.hysteresis_low
    threshold = rule_threshold(histogram, config.threshold_rule, config.threshold, config.foreground_fraction,
                               config.rule_quantile, config.rule_factor)
    low = None if config.hysteresis_low is None else config.hysteresis_low * threshold / config.threshold
    return threshold, low


def postprocess_checked(prob: np.ndarray, config: PostConfig, histogram: np.ndarray | None = None) -> np.ndarray:
    """`postprocess` on a map already checked (3D, finite), with its histogram when a rule needs it: the
    calibrator calls this with both cached."""
    backend = components_backend(config.components_backend)
    threshold, low = volume_threshold(config, histogram)
    mask = threshold_mask(prob, threshold, low, backend)
    if config.min_component_mean_probability > 0.0 or config.closing_radius > 0:
        if mask.any():
            labels, count = _label(mask, backend)
            mask = filter_components(mask, labels, count, prob, config.min_component_voxels,
                                     config.min_component_mean_probability)
            if config.closing_radius > 0:
                labels, count = _label(mask, backend)
                mask = close_per_sheet(mask, labels, count, config.closing_radius)
    else:
        mask = remove_small_components(mask, config.min_component_voxels, backend)
    return finish_mask(mask, config, backend)


def finish_mask(mask: np.ndarray, config: PostConfig, backend: str) -> np.ndarray:
    """The steps after the component cut (hole filling, 1-voxel plugs) as uint8: shared with the calibrator,
    which cuts components for many settings from one labelling."""
    if config.fill_holes == "3d" and config.max_hole_voxels > 0:
        mask = fill_small_cavities(mask, config.max_hole_voxels,
                                   lambda m: _label(~m.astype(bool, copy=False), backend, connectivity=6))
    else:
        mask = fill_holes(mask, config.fill_holes, backend)
    if config.plug_holes:
        mask = plug_one_voxel_holes(mask)
    return mask.astype(np.uint8)
