"""A compact built-in 3D U-Net and its checkpoint format.

The network: `len(features)` stages; each stage is two 3x3x3 convolutions with InstanceNorm (affine)
and LeakyReLU(0.01), the first of them strided (2) from the second stage on, like nnU-Net's plain
encoder; the decoder upsamples with a stride-2 transposed convolution, concatenates the skip and runs
two more conv blocks; a 1x1x1 convolution gives `out_channels` logits. With the default widths
(8, 16, 32, 64) it has about 0.3 M parameters: small enough to train on CPU on synthetic sheets.

On-disk format (a checkpoint is a FOLDER):

    <checkpoint>/
        config.json        {"format": "offlinepack-unet", "version": 1, "in_channels": 1,
                            "out_channels": 2, "features": [8, 16, 32, 64],
                            "patch_size": [64, 64, 64], "norm_mean": 0.0, "norm_std": 255.0,
                            "activation": "softmax", "surface_channel": 1}
        model.safetensors  the network's state dict (float32), keys as `build_unet(config)` names them

`load_checkpoint` also accepts a `NAME.safetensors` file whose config sits next to it as `NAME.json`.

Normalisation: the engine feeds `(voxel - norm_mean) / norm_std` (defaults: divide by 255).
Activation: "softmax" over `out_channels` (>= 2) or "sigmoid" (usually `out_channels` 1);
`surface_channel` is the channel whose probability is the surface.
`patch_size` must be divisible by 2 ** (len(features) - 1).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from offlinepack.atomic import output_folder, replace_folder
from offlinepack.models.errors import ModelLoadError, check_state_dict, read_json_object

FORMAT = "offlinepack-unet"
VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"

__all__ = ["UNetConfig", "build_unet", "save_checkpoint", "load_checkpoint", "is_builtin_checkpoint"]


@dataclass(frozen=True)
class UNetConfig:
    """Everything needed to rebuild the network and feed it."""

    in_channels: int = 1
    out_channels: int = 2
    features: tuple[int, ...] = (8, 16, 32, 64)
    patch_size: tuple[int, int, int] = (64, 64, 64)
    norm_mean: float = 0.0
    norm_std: float = 255.0
    activation: str = "softmax"
    surface_channel: int = 1
    extra: dict = field(default_factory=dict, compare=False)  # free-form notes (training data, epochs...)

    def __post_init__(self) -> None:
        wrong = self.type_problems()  # before any arithmetic: a string width must not reach torch
        if wrong:
            raise ModelLoadError("invalid built-in U-Net config", problems=wrong,
                                 hint="restore config.json from the checkpoint's original copy")
        object.__setattr__(self, "features", tuple(int(f) for f in self.features))
        object.__setattr__(self, "patch_size", tuple(int(p) for p in self.patch_size))
        problems = self.problems()
        if problems:
            raise ModelLoadError("invalid built-in U-Net config", problems=problems)

    def type_problems(self) -> list[str]:
        """Each field of the wrong JSON type, named (a hand-edited or damaged config.json)."""
        def integer(value: object) -> bool:
            return isinstance(value, int) and not isinstance(value, bool)

        found = []
        for name in ("in_channels", "out_channels", "surface_channel"):
            if not integer(getattr(self, name)):
                found.append(f"{name}: expected an integer, got {getattr(self, name)!r}")
        for name in ("norm_mean", "norm_std"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                found.append(f"{name}: expected a number, got {value!r}")
        for name in ("features", "patch_size"):
            value = getattr(self, name)
            if not isinstance(value, (list, tuple)) or not all(integer(v) for v in value):
                found.append(f"{name}: expected a list of integers, got {value!r}")
        if not isinstance(self.activation, str):
            found.append(f"activation: expected a string, got {self.activation!r}")
        if not isinstance(self.extra, dict):
            found.append(f"extra: expected a table, got {self.extra!r}")
        return found

    def problems(self) -> list[str]:
        found = []
        if len(self.features) < 2 or any(f < 1 for f in self.features):
            found.append(f"features must list at least 2 positive widths, got {list(self.features)}")
        if len(self.patch_size) != 3:
            found.append(f"patch_size must have 3 entries (z, y, x), got {list(self.patch_size)}")
        factor = 2 ** max(len(self.features) - 1, 0)
        if any(p < 1 or p % factor for p in self.patch_size):
            found.append(f"patch_size {list(self.patch_size)} must be positive multiples of {factor}")
        if self.activation not in ("softmax", "sigmoid"):
            found.append(f"activation must be 'softmax' or 'sigmoid', got {self.activation!r}")
        if self.activation == "softmax" and self.out_channels < 2:
            found.append("softmax needs out_channels >= 2")
        if not 0 <= self.surface_channel < self.out_channels:
            found.append(f"surface_channel {self.surface_channel} is not in 0..{self.out_channels - 1}")
        if not self.norm_std > 0:
            found.append(f"norm_std must be > 0, got {self.norm_std}")
        return found

    def to_dict(self) -> dict:
        data = asdict(self)
        data["features"] = list(self.features)
        data["patch_size"] = list(self.patch_size)
        return {"format": FORMAT, "version": VERSION, **data}

    @classmethod
    def from_dict(cls, data: dict, source: str = "config") -> UNetConfig:
        if data.get("format") != FORMAT:
            raise ModelLoadError(f"{source}: not a built-in U-Net config (format is {data.get('format')!r}, expected {FORMAT!r})")
        if data.get("version") != VERSION:
            raise ModelLoadError(f"{source}: unsupported config version {data.get('version')!r} (this build reads {VERSION})")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known - {"format", "version"})
        if unknown:
            raise ModelLoadError(f"{source}: unknown config keys {unknown}")
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except (TypeError, ValueError) as exc:
            raise ModelLoadError(f"{source}: bad config value: {exc}") from exc


def _block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(c_in, c_out, 3, stride=stride, padding=1),
        nn.InstanceNorm3d(c_out, affine=True, eps=1e-5),
        nn.LeakyReLU(0.01, inplace=True),
        nn.Conv3d(c_out, c_out, 3, padding=1),
        nn.InstanceNorm3d(c_out, affine=True, eps=1e-5),
        nn.LeakyReLU(0.01, inplace=True),
    )


class CompactUNet(nn.Module):
    """Plain encoder-decoder U-Net; returns logits (N, out_channels, Z, Y, X)."""

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        feats = config.features
        self.encoder = nn.ModuleList(
            _block(config.in_channels if i == 0 else feats[i - 1], f, 1 if i == 0 else 2) for i, f in enumerate(feats)
        )
        self.up = nn.ModuleList(nn.ConvTranspose3d(feats[i + 1], feats[i], 2, stride=2) for i in reversed(range(len(feats) - 1)))
        self.decoder = nn.ModuleList(_block(2 * feats[i], feats[i], 1) for i in reversed(range(len(feats) - 1)))
        self.head = nn.Conv3d(feats[0], config.out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for stage in self.encoder:
            x = stage(x)
            skips.append(x)
        x = skips.pop()
        for up, dec in zip(self.up, self.decoder):
            x = dec(torch.cat([up(x), skips.pop()], dim=1))
        return self.head(x)


def build_unet(config: UNetConfig) -> nn.Module:
    """A freshly initialised network for `config`."""
    return CompactUNet(config)


def save_checkpoint(model: nn.Module, config: UNetConfig, path: Path | str) -> Path:
    """Write `path/` (config.json + model.safetensors) atomically; an existing checkpoint is replaced
    only once the new one is complete."""
    from safetensors.torch import save_file

    path = output_folder(path)  # through a link: the link stays, its target is replaced
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}
    check_state_dict(build_unet(config).state_dict(), state, str(path))
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        save_file(state, str(tmp / WEIGHTS_NAME), metadata={"format": FORMAT})
        (tmp / CONFIG_NAME).write_text(json.dumps(config.to_dict(), indent=2) + "\n")
        replace_folder(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def _checkpoint_files(path: Path) -> tuple[Path, Path]:
    if path.is_dir():
        return path / CONFIG_NAME, path / WEIGHTS_NAME
    if path.suffix == ".safetensors":
        return path.with_suffix(".json"), path
    raise ModelLoadError(
        f"{path}: not a built-in U-Net checkpoint",
        hint=f"pass the checkpoint folder (holding {CONFIG_NAME} and {WEIGHTS_NAME}) or NAME.safetensors next to NAME.json",
    )


def is_builtin_checkpoint(path: Path) -> bool:
    """True when `path` looks like a built-in U-Net checkpoint (config present with our format tag)."""
    try:
        config_path, weights_path = _checkpoint_files(Path(path))
        return weights_path.is_file() and json.loads(config_path.read_text()).get("format") == FORMAT
    except (ModelLoadError, OSError, ValueError, AttributeError):
        return False


def load_checkpoint(path: Path | str) -> tuple[nn.Module, UNetConfig]:
    """Read a checkpoint written by `save_checkpoint`; returns the network in eval mode on CPU."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    config_path, weights_path = _checkpoint_files(path)
    missing = [str(p) for p in (config_path, weights_path) if not p.is_file()]
    if missing:
        raise ModelLoadError(f"{path}: built-in U-Net checkpoint is incomplete", problems=[f"missing {m}" for m in missing])
    config = UNetConfig.from_dict(read_json_object(config_path), str(config_path))
    try:
        state = load_file(str(weights_path))
    except (SafetensorError, OSError) as exc:
        raise ModelLoadError(f"{weights_path}: cannot read weights ({exc})") from exc
    model = build_unet(config)
    check_state_dict(model.state_dict(), state, str(weights_path))
    model.load_state_dict(state)
    return model.eval(), config
