"""One entry point: a path -> LoadedModel, whichever of the three formats it is.

- a folder with plans.json + dataset.json: nnU-Net v2 trained-model folder (`folds` picks folds)
- a folder with config.json + model.safetensors, or NAME.safetensors + NAME.json: built-in U-Net
- NAME.pt / .ts / .torchscript / .pt2 with NAME.json: TorchScript or torch.export network
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from offlinepack.models import builtin_unet
from offlinepack.models.base import LoadedModel, Normalization, Preprocessing, file_hashes
from offlinepack.models.errors import ModelLoadError
from offlinepack.models.nnunet_folder import is_nnunet_folder, load_nnunet_folder
from offlinepack.models.torchscript_model import SUFFIXES, is_torchscript_model, load_torchscript_model


def load_builtin(path: Path) -> LoadedModel:
    network, config = builtin_unet.load_checkpoint(path)
    files = [path / builtin_unet.CONFIG_NAME, path / builtin_unet.WEIGHTS_NAME] if path.is_dir() else [path.with_suffix(".json"), path]
    return LoadedModel(
        name=path.stem if path.is_file() else path.name,
        kind="builtin-unet",
        source=path,
        networks=(network,),
        patch_size=config.patch_size,
        preprocessing=Preprocessing(normalization=Normalization(kind="affine", mean=config.norm_mean, std=config.norm_std)),
        activation=config.activation,
        surface_channel=config.surface_channel,
        num_outputs=config.out_channels,
        mirror_axes=(0, 1, 2),
        files=file_hashes(files),
        details={"features": list(config.features)},
    )


def load_model(path: Path | str, folds: Sequence[int | str] | None = None) -> LoadedModel:
    """Detect the format of `path` and load it (networks on CPU, eval mode)."""
    path = Path(path)
    if not path.exists():
        raise ModelLoadError(f"model {path} does not exist")
    if is_nnunet_folder(path):
        return load_nnunet_folder(path, folds)
    if folds is not None:
        raise ModelLoadError(f"{path}: folds apply only to nnU-Net model folders")
    if builtin_unet.is_builtin_checkpoint(path):
        return load_builtin(path)
    if path.is_file() and path.suffix in SUFFIXES:
        return load_torchscript_model(path)  # reports a missing or bad sidecar itself
    if is_torchscript_model(path):
        return load_torchscript_model(path)
    if path.is_dir() and (path / builtin_unet.CONFIG_NAME).exists():
        return load_builtin(path)  # reports what is wrong with the checkpoint
    if path.is_dir():
        inside = sorted(p.parent for p in path.glob("**/plans.json") if is_nnunet_folder(p.parent))[:5]
        if inside:
            raise ModelLoadError(
                f"{path}: not a model folder itself, but it holds nnU-Net model folders",
                problems=[str(p) for p in inside],
                hint="pass one of these folders (the one with plans.json, dataset.json and fold_*/)",
            )
    raise ModelLoadError(
        f"{path}: not a model offlinepack can read",
        hint="pass an nnU-Net model folder (plans.json, dataset.json, fold_*/), a built-in U-Net checkpoint folder "
        "(config.json, model.safetensors) or a TorchScript file with a .json sidecar",
    )
