"""sha256 of files and wheel RECORD entries: one implementation for every stage (no torch, no numpy)."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks (wheels and checkpoints can be GBs)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def record_hash(data: bytes) -> str:
    """The `sha256=<urlsafe base64, unpadded>` form a wheel's RECORD uses."""
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
