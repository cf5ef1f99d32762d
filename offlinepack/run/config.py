"""What one `offlinepack run` does: run.toml, overridden by command-line flags.

run.toml (every key optional; relative paths are relative to the run.toml's folder):

    models = ["/kaggle/input/my-model/nnUNetTrainer__nnUNetResEncUNetLPlans__3d_fullres"]
                                    # model paths: nnU-Net trained-model folder, TorchScript file with
                                    # JSON sidecar, built-in U-Net checkpoint; "demo" = the bundled one
    weights = [1.0]                 # ensemble weight per model (default: equal)
    folds = [0, 1, 2, 3, 4]         # nnU-Net folds to use (default: all found)
    input = "/kaggle/input/competitions/vesuvius-challenge-surface-detection"
                                    # competition folder (test_images/ + test.csv) or a folder of <id>.tif;
                                    # default: searched under /kaggle/input (both layouts)
    output = "submission.zip"       # default: /kaggle/working/submission.zip in a kernel, ./submission.zip elsewhere
    ledger = "runs.jsonl"           # an extra ledger file (always also beside the output)
    overwrite = false               # recompute masks already in the work folder
    force = false                   # run even when the readiness check fails
    workers = 2                     # threads for post-processing + mask writing (overlap with inference)
    prefetch = 1                    # volumes read ahead of inference
    on_error = "fail"               # a volume that fails: "fail" (no zip; the old one is kept) or "empty"
                                    # (an empty mask of the source's shape goes in, marked in the ledger)

    [post]                          # offlinepack.post.PostConfig
    threshold = 0.5                 # surface probability threshold (winners used 0.2-0.4 on real data)
    hysteresis_low = 0.3            # optional: hysteresis thresholding down to this value (unset: off)
    min_component_voxels = 1000     # 26-connected components smaller than this are dropped (0: off)
    fill_holes = "3d"               # "3d" | "2d" (per Z slice) | "none"
    components_backend = "auto"     # "auto" | "cc3d" | "scipy"
    threshold_rule = "fixed"        # "fixed" | "foreground_fraction" | "relative_quantile" (per volume)
    foreground_fraction = 0.02      # rule foreground_fraction: keep this share of the volume's voxels
    rule_quantile = 0.999           # rule relative_quantile: rule_factor x this quantile of the volume
    rule_factor = 0.5
    min_component_mean_probability = 0.0  # drop components whose mean probability is below (0: off)
    closing_radius = 0              # morphological closing of each sheet on its own, ball radius (0: off)
    max_hole_voxels = 0             # with fill_holes = "3d": fill only cavities up to this size (0: all)
    plug_holes = false              # fill 1-voxel holes through sheets

    [inference]                     # offlinepack.inference.InferenceSettings
    step_size = 0.5                 # sliding-window step as a fraction of the patch
    mirror_axes = [0, 1, 2]         # test-time mirroring axes ([] = off; the demo defaults to off)
    batch_size = 4                  # default: automatic from free memory
    precision = "auto"              # "auto" | "fp16" | "bf16" | "fp32"
    device = "auto"                 # "auto" | "cpu" | "cuda" | "cuda:N"
    compile = true                  # torch.compile the networks (default: on CUDA when torch supports it,
                                    # off on CPU; a failure falls back to eager); false = --no-compile

A key not listed here is an error naming it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from offlinepack._compat import tomllib
from offlinepack.errors import OfflinepackError
from offlinepack.inference.settings import InferenceSettings, setting_types
from offlinepack.post import PostConfig

DEMO_MODEL = "demo"
ON_ERROR_CHOICES = ("fail", "empty")
INFERENCE_KEYS = setting_types()  # declared once, on InferenceSettings


@dataclass(frozen=True)
class RunConfig:
    """A fully merged run configuration (paths already absolute or None)."""

    models: tuple[str, ...] = ()
    weights: tuple[float, ...] | None = None
    folds: tuple[int, ...] | None = None
    input: Path | None = None
    output: Path | None = None
    ledger: Path | None = None
    overwrite: bool = False
    force: bool = False
    workers: int = 2
    prefetch: int = 1
    on_error: str = "fail"  # one of ON_ERROR_CHOICES
    post: PostConfig = field(default_factory=PostConfig)
    inference: dict[str, Any] = field(default_factory=dict)  # only keys explicitly set

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, PostConfig):
                value = value.to_dict()
            elif isinstance(value, Path):
                value = str(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out


_TOP_TYPES: dict[str, tuple[type, ...]] = {
    "models": (list, str),
    "weights": (list,),
    "folds": (list,),
    "input": (str,),
    "output": (str,),
    "ledger": (str,),
    "overwrite": (bool,),
    "force": (bool,),
    "workers": (int,),
    "prefetch": (int,),
    "on_error": (str,),
    "post": (dict,),
    "inference": (dict,),
}


def _path(value: str | Path | None, base: Path) -> Path | None:
    if value is None:
        return None
    path = Path(value).expanduser()
    return Path(os.path.normpath(path if path.is_absolute() else base / path))  # "cfg/../data" -> "data"


def _model(value: str, base: Path) -> str:
    return value if value == DEMO_MODEL else str(_path(value, base))


def check_inference(data: dict[str, Any], where: str = "inference") -> dict[str, Any]:
    problems = []
    for key, value in data.items():
        if key not in INFERENCE_KEYS:
            problems.append(f"unknown key in [{where}]: {key} (known: {', '.join(INFERENCE_KEYS)})")
        elif isinstance(value, bool) and bool not in INFERENCE_KEYS[key]:
            problems.append(f"{where}.{key}: expected {INFERENCE_KEYS[key][0].__name__}, got {value!r}")
        elif not isinstance(value, INFERENCE_KEYS[key]):
            problems.append(f"{where}.{key}: expected {INFERENCE_KEYS[key][0].__name__}, got {value!r}")
    if problems:
        raise OfflinepackError("invalid inference settings", problems=problems, hint=SETTINGS_HINT)
    out = dict(data)
    if "mirror_axes" in out:
        out["mirror_axes"] = tuple(int(a) for a in out["mirror_axes"])
    if "step_size" in out:
        out["step_size"] = float(out["step_size"])
    return out


def load_run_toml(path: Path) -> RunConfig:
    """Parse run.toml into a RunConfig; every unknown key or wrong type is reported at once."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise OfflinepackError(f"run config {path} does not exist", hint="pass --config with an existing run.toml") from None
    except (OSError, UnicodeDecodeError) as error:
        raise OfflinepackError(f"cannot read run config {path}: {error}",
                               hint="pass --config with a readable UTF-8 run.toml") from error
    except tomllib.TOMLDecodeError as error:
        raise OfflinepackError(f"{path}: not valid TOML ({error})",
                               hint="fix the line named above (a cut-off file: restore it from your copy); "
                                    "every key is listed in offlinepack/run/config.py") from error
    problems = _toml_problems(data)
    if problems:
        raise OfflinepackError(f"{path}: invalid run config", problems=problems,
                               hint="every key is listed in offlinepack/run/config.py (flags: `offlinepack run --help`)")
    base = path.resolve().parent
    models = data.get("models", [])
    return RunConfig(
        models=tuple(_model(m, base) for m in ([models] if isinstance(models, str) else models)),
        weights=tuple(float(w) for w in data["weights"]) if "weights" in data else None,
        folds=tuple(data["folds"]) if "folds" in data else None,
        input=_path(data.get("input"), base),
        output=_path(data.get("output"), base),
        ledger=_path(data.get("ledger"), base),
        overwrite=data.get("overwrite", False),
        force=data.get("force", False),
        workers=data.get("workers", 2),
        prefetch=data.get("prefetch", 1),
        on_error=data.get("on_error", "fail"),
        post=PostConfig.from_mapping(data.get("post", {})),
        inference=check_inference(data.get("inference", {})),
    )


_POST_TYPES: dict[str, tuple[type, ...]] = {
    "threshold": (float, int),
    "hysteresis_low": (float, int),
    "min_component_voxels": (int,),
    "fill_holes": (str,),
    "components_backend": (str,),
    # per-volume threshold rule and topology steps (offlinepack.post.rules, offlinepack.post.topology)
    "threshold_rule": (str,),
    "foreground_fraction": (float,),
    "rule_quantile": (float,),
    "rule_factor": (float, int),
    "min_component_mean_probability": (float, int),
    "closing_radius": (int,),
    "max_hole_voxels": (int,),
    "plug_holes": (bool,),
}
_NAMES = {float: "number", int: "integer", str: "string", bool: "true/false", list: "list", dict: "table"}


def _is(value: Any, types: tuple[type, ...]) -> bool:
    return isinstance(value, types) and (bool in types or not isinstance(value, bool))


def _toml_problems(data: dict[str, Any]) -> list[str]:
    """Every problem in a parsed run.toml at once: unknown keys and wrong types at the top, in [post] and in
    [inference], list items, and out-of-range values (so one edit fixes them all)."""
    problems = []
    for key, value in data.items():
        if key not in _TOP_TYPES:
            where = "[post]" if key in _POST_TYPES else "[inference]" if key in INFERENCE_KEYS else None
            problems.append(f"unknown key {key!r}" + (f" (it belongs under {where})" if where else
                                                      f" (known: {', '.join(_TOP_TYPES)})"))
        elif not _is(value, _TOP_TYPES[key]):
            problems.append(f"{key}: expected {_NAMES[_TOP_TYPES[key][0]]}, got {value!r}")
    items = {"models": (str,), "weights": (float, int), "folds": (int,)}
    for key, types in items.items():
        value = data.get(key)
        if isinstance(value, list) and not all(_is(v, types) for v in value):
            problems.append(f"{key}: expected a list of {_NAMES[types[0]]}s, got {value!r}")
    for key, least in (("workers", 1), ("prefetch", 0)):
        if _is(data.get(key), (int,)) and data[key] < least:
            problems.append(f"{key}: must be >= {least}, got {data[key]}")
    post = data.get("post") if isinstance(data.get("post"), dict) else {}
    typed = {}
    for key, value in post.items():
        if key not in _POST_TYPES:
            problems.append(f"unknown key in [post]: {key} (known: {', '.join(_POST_TYPES)})")
        elif not _is(value, _POST_TYPES[key]):
            problems.append(f"post.{key}: expected {_NAMES[_POST_TYPES[key][0]]}, got {value!r}")
        else:
            typed[key] = value
    try:
        PostConfig.from_mapping(typed)  # ranges and choices of the well-typed keys: threshold in (0, 1), ...
    except OfflinepackError as error:
        problems += list(error.problems) or [error.message]
    inference = data.get("inference") if isinstance(data.get("inference"), dict) else {}
    axes = inference.get("mirror_axes")
    if isinstance(axes, list) and not all(_is(a, (int,)) for a in axes):
        problems.append(f"inference.mirror_axes: expected a list of integers, got {axes!r}")
        inference = {k: v for k, v in inference.items() if k != "mirror_axes"}
    try:
        problems += inference_value_problems(check_inference(inference))
    except OfflinepackError as error:
        problems += list(error.problems)
    if _is(data.get("on_error"), (str,)) and data["on_error"] not in ON_ERROR_CHOICES:
        problems.append(f"on_error: must be one of {', '.join(ON_ERROR_CHOICES)}, got {data['on_error']!r}")
    return problems


def inference_value_problems(inference: dict[str, Any]) -> list[str]:
    """Out-of-range or unknown values among well-typed inference settings (step 0, device "tpu", axis 5),
    found without touching a device, so a run refuses them before it writes anything."""
    try:
        InferenceSettings(**inference)
    except OfflinepackError as error:
        return [f"inference.{line}" for line in error.problems] or [error.message]
    except (TypeError, ValueError) as error:  # a library caller's unchecked dict: a wrong type or unknown key
        return [f"inference: {error}"]
    return []


SETTINGS_HINT = ("valid values: --device auto|cpu|cuda|cuda:N, --precision auto|fp16|bf16|fp32, --step-size in (0, 1], "
                 "--batch-size >= 1, --mirror-axes among 0,1,2 or none, --on-error fail|empty "
                 "(run.toml keys: offlinepack/run/config.py)")


def check_settings(config: RunConfig) -> None:
    """Every problem with a merged configuration's values at once; called before a run has any side effect."""
    problems = inference_value_problems(dict(config.inference))
    if config.on_error not in ON_ERROR_CHOICES:
        problems.append(f"on_error must be one of {', '.join(ON_ERROR_CHOICES)}, got {config.on_error!r}")
    if config.workers < 1 or config.prefetch < 0:
        problems.append(f"workers must be >= 1 and prefetch >= 0, got {config.workers} and {config.prefetch}")
    if config.weights is not None and config.models and len(config.weights) != len(config.models):
        problems.append(f"{len(config.weights)} weight(s) for {len(config.models)} model(s): give one weight per model")
    if len(problems) == 1:
        raise OfflinepackError(f"invalid run setting: {problems[0]}", hint=SETTINGS_HINT)
    if problems:
        raise OfflinepackError("invalid run settings", problems=problems, hint=SETTINGS_HINT)


def apply_overrides(config: RunConfig, **overrides: Any) -> RunConfig:
    """Command-line values win over run.toml; None (flag not given) keeps the file's value.

    `post` and `inference` take dicts merged key by key; paths are taken relative to the cwd.
    """
    changes: dict[str, Any] = {}
    cwd = Path.cwd()
    for key, value in overrides.items():
        if value is None or value == () or value == []:
            continue
        if key == "post":
            changes["post"] = PostConfig.from_mapping({**config.post.to_dict(), **value})
        elif key == "inference":
            changes["inference"] = {**config.inference, **check_inference(value)}
        elif key == "models":
            changes["models"] = tuple(_model(str(m), cwd) for m in value)
        elif key in ("input", "output", "ledger"):
            changes[key] = _path(value, cwd)
        elif key in ("weights", "folds"):
            changes[key] = tuple(value)
        elif key in {f.name for f in fields(RunConfig)}:
            changes[key] = value
        else:
            raise OfflinepackError(f"unknown run setting {key!r}", hint=SETTINGS_HINT)
    result = replace(config, **changes)
    check_settings(result)
    return result
