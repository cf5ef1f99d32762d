"""The embedded demo: a bundled built-in U-Net checkpoint and a synthetic sample input.

`offlinepack run` with no model and no input (outside a Kaggle kernel) uses both, so a fresh install
produces a valid submission.zip on CPU in seconds. The checkpoint was trained on synthetic sheets by
`scripts/train_demo_model.py`; it knows nothing about real scrolls.
"""

from __future__ import annotations

from pathlib import Path

from offlinepack.demo.sample import DEMO_ID, DEMO_SHAPE, write_demo_input
from offlinepack.demo.synthetic import SheetVolume, make_sheet_volume

DEMO_CHECKPOINT = Path(__file__).resolve().parent / "unet"

__all__ = ["DEMO_CHECKPOINT", "DEMO_ID", "DEMO_SHAPE", "SheetVolume", "make_sheet_volume", "write_demo_input"]
