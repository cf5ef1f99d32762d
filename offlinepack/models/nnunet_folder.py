"""Load an nnU-Net v2 trained-model folder without nnunetv2 installed.

Layout read (what `nnUNetv2_train` writes, e.g. `Dataset001_X/nnUNetTrainer__nnUNetPlans__3d_fullres/`):

    plans.json, dataset.json, fold_<N>/checkpoint_final.pth (or checkpoint_best.pth), fold_all/...

The network is built from the plans' `architecture.network_class_name` + `arch_kwargs` (entries named
in `_kw_requires_import` are imported) with dynamic-network-architectures, deep supervision off,
and the folds' weights loaded. Supported: 3D configurations (3d_fullres, 3d_lowres without cascade),
one input channel, CT / z-score / no / rescale / RGB normalisation from the plans, transpose_forward,
crop to non-zero, softmax (labels) or sigmoid (regions). NOT supported: resampling (inputs are taken
to have the configuration's spacing; a warning says so when the plans resampled the training data),
2D configurations, cascades, several input channels.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch

from offlinepack.models.base import LoadedModel, Normalization, Preprocessing, file_hashes
from offlinepack.models.errors import ModelLoadError, check_state_dict, read_json_object

CHECKPOINT_NAMES = ("checkpoint_final.pth", "checkpoint_best.pth")
_SCHEMES = {
    "CTNormalization": "ct",
    "ZScoreNormalization": "zscore",
    "NoNormalization": "none",
    "RescaleTo01Normalization": "rescale_to_0_1",
    "RGBTo01Normalization": "rgb_to_0_1",
}
# import name -> distribution to install, for the error message
_PACKAGES = {"dynamic_network_architectures": "dynamic-network-architectures", "nnunetv2": "nnunetv2"}


def is_nnunet_folder(path: Path) -> bool:
    return path.is_dir() and (path / "plans.json").is_file() and (path / "dataset.json").is_file()


def _read_json(path: Path) -> dict:
    return read_json_object(path, "an nnU-Net model folder holds plans.json, dataset.json and fold_*/")


def find_fold_checkpoints(folder: Path, folds: Sequence[int | str] | None) -> list[tuple[str, Path]]:
    """(fold name, checkpoint path) for the requested folds (all present ones when None)."""
    present = {p.name[len("fold_"):]: p for p in sorted(folder.glob("fold_*")) if p.is_dir()}
    wanted = [str(f) for f in folds] if folds is not None else sorted(present, key=lambda f: (not f.isdigit(), f.zfill(9)))
    if not wanted:
        raise ModelLoadError(f"{folder}: no fold_* folders", hint="train at least one fold, or pass the right folder")
    found, problems = [], []
    for fold in wanted:
        fold_dir = present.get(fold)
        if fold_dir is None:
            problems.append(f"fold {fold}: {folder / f'fold_{fold}'} does not exist (present: {', '.join(sorted(present)) or 'none'})")
            continue
        checkpoint = next((fold_dir / n for n in CHECKPOINT_NAMES if (fold_dir / n).is_file()), None)
        if checkpoint is None:
            problems.append(f"fold {fold}: no {' or '.join(CHECKPOINT_NAMES)} in {fold_dir}")
            continue
        found.append((fold, checkpoint))
    if problems:
        raise ModelLoadError(f"{folder}: missing folds", problems=problems, hint="pass --folds with folds that exist")
    return found


def _load_checkpoint(path: Path) -> dict:
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - nnU-Net pickles numpy/torch objects: trusted local file, full unpickle
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:  # noqa: BLE001
            raise ModelLoadError(f"{path}: cannot read checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(checkpoint, dict) or "network_weights" not in checkpoint:
        raise ModelLoadError(f"{path}: not an nnU-Net checkpoint (no 'network_weights')")
    return checkpoint


def _resolve_configuration(plans: dict, name: str, source: Path) -> dict:
    configurations = plans.get("configurations", {})
    chain, config = [], {}
    while True:
        if name not in configurations:
            raise ModelLoadError(f"{source}: configuration {name!r} not in plans (has {sorted(configurations)})")
        if name in chain:
            raise ModelLoadError(f"{source}: configurations inherit in a circle: {' -> '.join(chain + [name])}")
        chain.append(name)
        parent = configurations[name].get("inherits_from")
        if parent is None:
            break
        name = parent
    for name in reversed(chain):
        config.update(configurations[name])
    return config


def import_object(dotted: str, what: str) -> object:
    """Import `package.module.Name`; errors name the object and the package to install."""
    module_name, _, attr = dotted.rpartition(".")
    top = dotted.split(".")[0]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        package = _PACKAGES.get(top, top.replace("_", "-"))
        raise ModelLoadError(
            f"{what} {dotted} cannot be imported ({exc})",
            hint=f"install the package that provides it: pip install {package}",
        ) from exc
    try:
        return getattr(module, attr)
    except AttributeError as exc:
        raise ModelLoadError(f"{what} {dotted}: module {module_name} has no {attr!r}", hint="upgrade the package that provides it") from exc


def build_network(architecture: dict, in_channels: int, out_channels: int, source: Path) -> torch.nn.Module:
    class_name = architecture.get("network_class_name")
    if not class_name:
        raise ModelLoadError(f"{source}: plans have no architecture.network_class_name")
    kwargs = dict(architecture.get("arch_kwargs", {}))
    for key in architecture.get("_kw_requires_import", ()):
        if kwargs.get(key) is not None:
            kwargs[key] = import_object(kwargs[key], f"architecture argument {key}:")
    network_class = import_object(class_name, "architecture class")
    try:
        return network_class(input_channels=in_channels, num_classes=out_channels, deep_supervision=False, **kwargs)
    except TypeError as exc:
        raise ModelLoadError(f"{source}: {class_name} does not accept the plans' arguments ({exc})") from exc


def _labels(dataset: dict, source: Path) -> tuple[int, str, int]:
    """(number of outputs, activation, surface channel) as nnU-Net's LabelManager derives them."""
    labels = {k: v for k, v in dataset.get("labels", {}).items() if k != "ignore"}
    if not labels:
        raise ModelLoadError(f"{source}: dataset.json has no labels")
    regions = [v for v in labels.values() if isinstance(v, (list, tuple))]
    if any(len(r) > 1 for r in regions):
        foreground = [tuple(v) if isinstance(v, (list, tuple)) else (v,) for v in labels.values()]
        foreground = [r for r in foreground if set(r) != {0}]
        surface = next((i for i, r in enumerate(foreground) if 1 in r), 0)
        return len(foreground), "sigmoid", surface
    values = sorted({int(x) for v in labels.values() for x in (v if isinstance(v, (list, tuple)) else [v])})
    return len(values), "softmax", values.index(1) if 1 in values else min(1, len(values) - 1)


def load_nnunet_folder(folder: Path, folds: Sequence[int | str] | None = None) -> LoadedModel:
    """Read plans, dataset and fold checkpoints; returns the folds' networks (eval, CPU) and preprocessing."""
    folder = Path(folder)
    plans, dataset = _read_json(folder / "plans.json"), _read_json(folder / "dataset.json")
    fold_paths = find_fold_checkpoints(folder, folds)
    checkpoints = [_load_checkpoint(p) for _, p in fold_paths]
    first = checkpoints[0]
    configuration_name = (first.get("init_args") or {}).get("configuration", "3d_fullres")
    config = _resolve_configuration(plans, configuration_name, folder / "plans.json")
    patch_size = tuple(int(p) for p in config.get("patch_size", ()))
    problems = []
    if len(patch_size) != 3:
        problems.append(f"configuration {configuration_name!r} is {len(patch_size)}D: only 3D configurations are supported")
    if config.get("previous_stage"):
        problems.append(f"configuration {configuration_name!r} is a cascade stage: cascades are not supported")
    channels = dataset.get("channel_names", dataset.get("modality", {}))
    if len(channels) != 1:
        problems.append(f"the model takes {len(channels)} input channels; Vesuvius volumes have 1")
    if "architecture" not in config:
        problems.append("old plans format without 'architecture': re-run nnUNetv2_plan_experiment with nnunetv2 >= 2.4")
    if problems:
        raise ModelLoadError(f"{folder}: unsupported nnU-Net model", problems=problems)

    scheme = config.get("normalization_schemes", ["ZScoreNormalization"])[0]
    if scheme not in _SCHEMES:
        raise ModelLoadError(f"{folder}: normalisation scheme {scheme!r} is not supported", hint=f"supported: {', '.join(_SCHEMES)}")
    props = plans.get("foreground_intensity_properties_per_channel", {}).get("0", {})
    if _SCHEMES[scheme] == "ct" and not {"mean", "std", "percentile_00_5", "percentile_99_5"} <= set(props):
        raise ModelLoadError(f"{folder}/plans.json: CTNormalization needs foreground_intensity_properties_per_channel['0'] "
                             "with mean, std, percentile_00_5, percentile_99_5")
    normalization = Normalization(
        kind=_SCHEMES[scheme],
        mean=float(props.get("mean", 0.0)),
        std=float(props.get("std", 1.0)),
        lower=props.get("percentile_00_5"),
        upper=props.get("percentile_99_5"),
        use_mask=bool(config.get("use_mask_for_norm", [False])[0]),
    )
    transpose = tuple(int(i) for i in plans.get("transpose_forward", (0, 1, 2)))
    spacing, median = config.get("spacing"), plans.get("original_median_spacing_after_transp")
    if spacing and median and [float(s) for s in spacing] != [float(s) for s in median]:
        warnings.warn(
            f"{folder}: the plans resample to spacing {spacing} (dataset median {median}); offlinepack does not "
            f"resample, so volumes are taken to already have spacing {spacing}",
            stacklevel=2,
        )
    num_outputs, activation, surface = _labels(dataset, folder)
    networks = []
    for (fold, path), checkpoint in zip(fold_paths, checkpoints):
        network = build_network(config["architecture"], 1, num_outputs, folder / "plans.json")
        state = {_strip_prefix(k): v for k, v in checkpoint["network_weights"].items()}
        check_state_dict(network.state_dict(), state, f"{path} (fold {fold})")
        network.load_state_dict(state)
        networks.append(network.eval())
    mirror = first.get("inference_allowed_mirroring_axes")
    return LoadedModel(
        name=folder.name,
        kind="nnunet",
        source=folder,
        networks=tuple(networks),
        patch_size=patch_size,  # type: ignore[arg-type]
        preprocessing=Preprocessing(normalization=normalization, transpose_forward=transpose, crop_to_nonzero=True),  # type: ignore[arg-type]
        activation=activation,
        surface_channel=surface,
        num_outputs=num_outputs,
        mirror_axes=tuple(int(a) for a in mirror) if mirror is not None else (),
        files=file_hashes([folder / "plans.json", folder / "dataset.json", *(p for _, p in fold_paths)]),
        details={
            "configuration": configuration_name,
            "folds": [f for f, _ in fold_paths],
            "architecture": config["architecture"]["network_class_name"],
            "trainer": first.get("trainer_name"),
        },
    )


def _strip_prefix(key: str) -> str:
    # torch.compile and DDP wrappers leave these in saved state dicts
    for prefix in ("_orig_mod.", "module."):
        if key.startswith(prefix):
            key = key[len(prefix):]
    return key
