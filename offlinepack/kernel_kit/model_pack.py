"""`offlinepack model pack`: model folders/files -> one Kaggle dataset folder holding only what `run` loads.

Per model format:
- nnU-Net v2 folder: plans.json, dataset.json and the chosen folds' checkpoint, stripped to the keys
  `offlinepack run` and nnunetv2's own predictor read (`KEPT_CHECKPOINT_KEYS`): the optimizer state,
  grad scaler and training log (about 2/3 of a checkpoint_final.pth) are dropped; checkpoint_best.pth,
  validation outputs, logs and other folds are not copied.
- built-in U-Net checkpoint folder: config.json + model.safetensors.
- TorchScript / torch.export file with its .json sidecar (kept in float32: a scripted graph's dtype is fixed).

`half` stores floating-point weights as float16 (both loaders cast them back to float32 on load).
Every packed model is loaded once on CPU and runs one small forward pass before the folder is
renamed into place. The folder also holds `dataset-metadata.json` (for `kaggle datasets create`) and
`offlinepack-models.json` (each file's sha256; the run's ledger records which pack it used).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from offlinepack import __version__
from offlinepack.atomic import replace_folder, umask_modes
from offlinepack.errors import OfflinepackError, raise_if_problems
from offlinepack.hashing import sha256_file
from offlinepack.wheelhouse.dataset import DatasetMetadata, dataset_metadata

# one definition of the pack manifest, shared with the ledger that records which pack a run used
from offlinepack.ledger.facts import MODEL_PACK_FORMAT as PACK_FORMAT  # noqa: E402
from offlinepack.ledger.facts import MODEL_PACK_MANIFEST as PACK_MANIFEST  # noqa: E402
METADATA_NAME = "dataset-metadata.json"
# what nnunetv2 2.8.1's nnUNetPredictor.initialize_from_trained_model_folder reads, and offlinepack's loader
KEPT_CHECKPOINT_KEYS = ("network_weights", "init_args", "trainer_name", "inference_allowed_mirroring_axes")


@dataclass(frozen=True, kw_only=True, slots=True)
class PackedFile:
    path: str  # relative to the pack folder
    sha256: str
    size: int
    source: str
    source_size: int


@dataclass(frozen=True, kw_only=True, slots=True)
class PackedModel:
    name: str
    kind: str  # nnunet | builtin-unet | torchscript
    path: str  # what `run --model` takes, relative to the pack folder ("." for the folder itself)
    source: str
    folds: tuple[str, ...]
    files: tuple[PackedFile, ...]
    source_folder_size: int  # everything in the source folder (what uploading it whole would cost)
    check: str  # the forward pass that passed: "input (1, 1, 32, 32, 32) -> output (1, 3, 32, 32, 32)"

    @property
    def size_before(self) -> int:
        return sum(f.source_size for f in self.files)

    @property
    def size_after(self) -> int:
        return sum(f.size for f in self.files)


@dataclass(frozen=True, kw_only=True, slots=True)
class PackResult:
    output: Path
    dataset: DatasetMetadata
    models: tuple[PackedModel, ...]
    half: bool
    warnings: tuple[str, ...]
    seconds: float

    def kernel_model_arg(self, model: PackedModel) -> str:
        """The `kernel init --model` value for this model."""
        return self.dataset.id + ("" if model.path == "." else f":{model.path}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "output": str(self.output), "dataset": self.dataset.to_dict(), "half": self.half,
            "models": [{"name": m.name, "kind": m.kind, "path": m.path, "source": m.source, "folds": list(m.folds),
                        "source_folder_size": m.source_folder_size, "size_before": m.size_before,
                        "size_after": m.size_after, "check": m.check, "kernel_model": self.kernel_model_arg(m),
                        "files": [{"path": f.path, "sha256": f.sha256, "size": f.size, "source": f.source,
                                   "source_size": f.source_size} for f in m.files]} for m in self.models],
            "size_before": sum(m.size_before for m in self.models),
            "size_after": sum(m.size_after for m in self.models),
            "warnings": list(self.warnings), "seconds": self.seconds,
        }


def _kind(path: Path) -> str:
    from offlinepack.models import builtin_unet
    from offlinepack.models.nnunet_folder import is_nnunet_folder
    from offlinepack.models.torchscript_model import SUFFIXES, sidecar_path

    if is_nnunet_folder(path):
        return "nnunet"
    if builtin_unet.is_builtin_checkpoint(path):
        return "builtin-unet"
    if path.is_file() and path.suffix in SUFFIXES:
        if not sidecar_path(path).is_file():
            raise OfflinepackError(f"{path}: TorchScript model without its sidecar {sidecar_path(path).name}",
                                   hint="write the sidecar (patch_size, normalization, activation, surface_channel)")
        return "torchscript"
    raise OfflinepackError(f"{path}: not a model offlinepack can pack",
                           hint="pass an nnU-Net model folder (plans.json, dataset.json, fold_*/), a built-in U-Net "
                                "checkpoint folder (config.json, model.safetensors) or a TorchScript file with a .json sidecar")


def _folder_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def strip_nnunet_checkpoint(source: Path, destination: Path, half: bool) -> None:
    """Only the keys inference reads, weights optionally float16; loadable with torch.load(weights_only=True)."""
    import torch

    from offlinepack.models.nnunet_folder import _load_checkpoint

    checkpoint = _load_checkpoint(source)
    kept: dict[str, Any] = {k: checkpoint[k] for k in KEPT_CHECKPOINT_KEYS if k in checkpoint}
    weights, converted = {}, {}
    for key, tensor in checkpoint["network_weights"].items():
        # the decoder holds the encoder, so a state dict names each encoder tensor twice over one storage:
        # keep them shared (torch.save writes a storage once), or the file doubles
        ident = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape), tensor.dtype)
        if ident not in converted:
            tensor = tensor.detach().cpu()
            converted[ident] = tensor.half() if half and tensor.is_floating_point() else tensor
        weights[key] = converted[ident]
    kept["network_weights"] = weights
    init_args = kept.get("init_args")
    if isinstance(init_args, Mapping) and "device" in init_args:
        # the training device means nothing at inference; a plain string keeps weights_only loading possible
        kept["init_args"] = {**init_args, "device": str(init_args["device"])}
    torch.save(kept, destination)


def _half_safetensors(source: Path, destination: Path) -> None:
    from safetensors.torch import load_file, save_file

    state = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in load_file(str(source)).items()}
    save_file(state, str(destination), metadata={"format": "offlinepack-unet"})


def _copy_model(source: Path, kind: str, place: Path, folds: Sequence[str] | None, half: bool,
                warnings: list[str]) -> tuple[list[tuple[Path, Path]], tuple[str, ...], Path]:
    """Write the model under `place`; returns (source file, packed file) pairs, the folds and the `--model` path."""
    from offlinepack.models import builtin_unet
    from offlinepack.models.torchscript_model import sidecar_path

    pairs: list[tuple[Path, Path]] = []
    if kind == "nnunet":
        from offlinepack.models.nnunet_folder import find_fold_checkpoints

        found = find_fold_checkpoints(source, folds)
        place.mkdir(parents=True, exist_ok=True)
        for name in ("plans.json", "dataset.json"):
            shutil.copyfile(source / name, place / name)
            pairs.append((source / name, place / name))
        for fold, checkpoint in found:
            (place / f"fold_{fold}").mkdir()
            packed = place / f"fold_{fold}" / checkpoint.name
            strip_nnunet_checkpoint(checkpoint, packed, half)
            pairs.append((checkpoint, packed))
        return pairs, tuple(f for f, _ in found), place
    if kind == "builtin-unet":
        config, weights = ((source / builtin_unet.CONFIG_NAME, source / builtin_unet.WEIGHTS_NAME) if source.is_dir()
                           else (source.with_suffix(".json"), source))
        place.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(config, place / builtin_unet.CONFIG_NAME)
        if half:
            _half_safetensors(weights, place / builtin_unet.WEIGHTS_NAME)
        else:
            shutil.copyfile(weights, place / builtin_unet.WEIGHTS_NAME)
        pairs += [(config, place / builtin_unet.CONFIG_NAME), (weights, place / builtin_unet.WEIGHTS_NAME)]
        return pairs, (), place
    place.mkdir(parents=True, exist_ok=True)
    if half:
        warnings.append(f"{source}: TorchScript models are packed in float32 (--half applies to nnU-Net and built-in "
                        "U-Net weights)")
    for file in (source, sidecar_path(source)):
        shutil.copyfile(file, place / file.name)
        pairs.append((file, place / file.name))
    return pairs, (), place / source.name


def _forward_divisor(model: Any) -> tuple[int, int, int]:
    """The input size every axis must be a multiple of (the network's total downsampling)."""
    details = model.details or {}
    if model.kind == "nnunet":
        plans = json.loads((Path(model.source) / "plans.json").read_text())
        from offlinepack.models.nnunet_folder import _resolve_configuration

        config = _resolve_configuration(plans, details.get("configuration", "3d_fullres"), Path(model.source))
        strides = config["architecture"]["arch_kwargs"].get("strides", [[1, 1, 1]])
        total = [1, 1, 1]
        for stride in strides:
            stride = stride if isinstance(stride, (list, tuple)) else [stride] * 3
            total = [t * int(s) for t, s in zip(total, stride)]
        return tuple(total)  # type: ignore[return-value]
    if model.kind == "builtin-unet":
        factor = 2 ** (len(details.get("features", [1, 1])) - 1)
        return (factor, factor, factor)
    return tuple(model.patch_size)  # type: ignore[return-value]  # a scripted graph may need its exact patch


def check_forward(path: Path, folds: Sequence[str] | None) -> str:
    """Load the packed model on CPU and run every fold once on a small zero input; returns what ran."""
    import torch

    from offlinepack.models.loader import load_model

    model = load_model(path, folds if folds else None)
    divisor = _forward_divisor(model)
    size = tuple(max(d, min(p, 2 * d)) if p >= d else p for d, p in zip(divisor, model.patch_size))
    x = torch.zeros(1, 1, *size)
    with torch.no_grad():
        for network in model.networks:
            out = network(x)
            out = out[0] if isinstance(out, (list, tuple)) else out
            if out.shape[0] != 1 or out.shape[1] != model.num_outputs or tuple(out.shape[2:]) != size:
                raise OfflinepackError(f"{path}: forward check gave shape {tuple(out.shape)} for input {tuple(x.shape)}; "
                                       f"expected (1, {model.num_outputs}, {', '.join(map(str, size))})")
            if not torch.isfinite(out).all():
                raise OfflinepackError(f"{path}: forward check gave non-finite outputs",
                                       hint="without --half? float16 weights may overflow for this model")
    return f"input {tuple(x.shape)} -> output {tuple(out.shape)} x {len(model.networks)} fold(s)"


def _unique_names(sources: Sequence[Path]) -> list[str]:
    names: list[str] = []
    for source in sources:
        base = source.name if source.is_dir() else source.stem
        name, n = base, 2
        while name in names:
            name, n = f"{base}-{n}", n + 1
        names.append(name)
    return names


def _replaceable(output: Path) -> bool:
    return output.is_dir() and (not any(output.iterdir()) or (output / PACK_MANIFEST).is_file())


def pack_models(sources: Sequence[Path], output: Path, *, dataset_id: str | None = None, title: str | None = None,
                license: str | None = None, folds: Sequence[str] | None = None, half: bool = False,
                force: bool = False, environ: Mapping[str, str] = os.environ) -> PackResult:
    """Build the pack in a temporary folder beside `output`, check it, then rename it into place."""
    started = time.perf_counter()
    sources = [Path(s) for s in sources]
    output = Path(output)
    problems = [f"model {s} does not exist" for s in sources if not s.exists()]
    if not sources:
        problems.append("no model given")
    if output.exists() and not force:
        problems.append(f"{output} already exists (pass --force to replace it)")
    elif output.exists() and not _replaceable(output):
        problems.append(f"{output} is not a model pack (no {PACK_MANIFEST}); --force replaces only a pack or an empty folder")
    raise_if_problems(problems, "cannot pack the models", hint="pass existing model paths and a new -o folder")
    metadata = dataset_metadata(dataset_id=dataset_id, title=title or f"{output.name} models"[:50],
                                license=license, default_slug=output.name, target_name="models", environ=environ)
    kinds = [_kind(s) for s in sources]
    if folds is not None and "nnunet" not in kinds:
        raise OfflinepackError("--folds applies to nnU-Net model folders only", hint="drop --folds")
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    warnings: list[str] = []
    try:
        models = []
        single = len(sources) == 1
        for source, kind, name in zip(sources, kinds, _unique_names(sources)):
            place = tmp if single else tmp / name
            pairs, used_folds, model_path = _copy_model(source, kind, place, folds if kind == "nnunet" else None,
                                                        half, warnings)
            check = check_forward(model_path, used_folds or None)
            files = tuple(PackedFile(path=str(packed.relative_to(tmp)), sha256=sha256_file(packed),
                                     size=packed.stat().st_size, source=str(src), source_size=src.stat().st_size)
                          for src, packed in pairs)
            rel = str(model_path.relative_to(tmp)) if model_path != tmp else "."
            models.append(PackedModel(name=name, kind=kind, path=rel, source=str(source), folds=used_folds,
                                      files=files, source_folder_size=_folder_size(source), check=check))
        manifest = {"format": PACK_FORMAT, "version": 1, "offlinepack_version": __version__,
                    "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "dataset_id": metadata.id, "half": half,
                    "models": [{"name": m.name, "kind": m.kind, "path": m.path, "folds": list(m.folds),
                                "files": [{"path": f.path, "sha256": f.sha256, "size": f.size} for f in m.files]}
                               for m in models]}
        (tmp / PACK_MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        (tmp / METADATA_NAME).write_text(json.dumps(metadata.to_dict(), indent=1) + "\n")
        umask_modes(tmp)
        replace_folder(tmp, output)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return PackResult(output=output, dataset=metadata, models=tuple(models), half=half, warnings=tuple(warnings),
                      seconds=round(time.perf_counter() - started, 3))

