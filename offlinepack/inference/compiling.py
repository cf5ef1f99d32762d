"""torch.compile for the engine: whether it is on, where its cache lives, and what happened.

On CUDA the engine compiles each network's forward by default (DOMAIN.md: batch-8 fp16 forwards of
the m7 network, 8.3 s eager vs 5.8 s compiled on an H100). Compilation is paid once per run, in a
warm-up forward at the planned batch size, and its seconds are reported on their own. Inductor's
caches go under the run's work folder, so a resumed run loads the compiled kernels instead of
compiling again. Any failure to compile falls back to the eager networks with a warning, and the
reason is kept for the run's ledger.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

CACHE_ENV = "TORCHINDUCTOR_CACHE_DIR"
COMPILE_CACHE_DIR = ".compile-cache"  # inside the run's work folder
# taken before inductor runs (it sets the variable to its default on first use): a user's own wins
_USER_CACHE_DIR = os.environ.get(CACHE_ENV)


def has_triton() -> bool:
    return importlib.util.find_spec("triton") is not None


def use_compile_cache(folder: Path | None) -> str | None:
    """Point inductor's caches (FX graphs, AOT autograd, triton kernels) at `folder`, unless the user set
    TORCHINDUCTOR_CACHE_DIR. Returns the cache folder in use (None: torch's default)."""
    if _USER_CACHE_DIR:
        return _USER_CACHE_DIR
    if folder is None:
        return os.environ.get(CACHE_ENV)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:  # a read-only work folder: compile anyway, into torch's default cache
        log.warning("compile cache %s not usable (%s): using torch's default", folder, error)
        return os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(folder)
    return str(folder)


@dataclass
class CompileStatus:
    """What the engine did about torch.compile; `describe()` and the run ledger carry `to_dict()`.
    Mutable: warm-up adds seconds, a failure turns it off."""

    requested: bool | None  # None = auto
    enabled: bool
    reason: str
    backend: str
    cache_dir: str | None = None
    seconds: float | None = None  # warm-up forwards that compiled (once per run, per device and model)
    fallback: str | None = None  # why compilation was abandoned (then enabled is False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "requested": "auto" if self.requested is None else self.requested,
            "enabled": self.enabled,
            "reason": self.reason,
            "backend": self.backend,
            "cache_dir": self.cache_dir,
            "seconds": None if self.seconds is None else round(self.seconds, 3),
            "fallback": self.fallback,
        }

    def add_seconds(self, seconds: float) -> None:
        self.seconds = (self.seconds or 0.0) + seconds

    def fail(self, error: BaseException, where: str) -> None:
        """Record a compile failure and warn once; the caller switches to the eager networks."""
        text = _one_line(error)
        cause = getattr(error, "inner_exception", None) or error.__cause__
        if cause is not None and cause is not error:
            text += f" (cause: {_one_line(cause)})"  # dynamo wraps a backend's error: its own says why
        self.enabled = False
        self.fallback = f"{where}: {text}"[:500]
        self.reason = "off: compilation failed, fell back to eager"
        message = f"torch.compile failed {where} ({text[:300]}): running the eager networks instead"
        log.warning(message)
        warnings.warn(message, stacklevel=3)


def _one_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def compile_networks(networks: list[torch.nn.Module], backend: str) -> list[torch.nn.Module]:
    """One specialised graph per input shape (dynamic=False): the engine keeps the batch size fixed,
    padding a last partial batch, so each network compiles once."""
    return [torch.compile(n, dynamic=False, backend=backend) for n in networks]
