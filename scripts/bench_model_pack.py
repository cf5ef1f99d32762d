#!/usr/bin/env python3
"""Model dataset size: an m7-sized nnU-Net training folder vs `offlinepack model pack` (float32 and --half).

    python scripts/bench_model_pack.py [--out DIR] [--json FILE]

Writes a random-weight ResEnc-L nnU-Net folder with the m7 plans (6 stages 32..320, blocks 1,3,4,6,6,6,
3 classes, ~102M parameters) as nnU-Net's trainer leaves it: fold_0/checkpoint_final.pth and
checkpoint_best.pth with the SGD momentum buffers of a real optimizer step (nnU-Net trains with SGD,
Nesterov momentum 0.99) and a 1000-epoch log, plus validation outputs and a training log. Then packs
fold 0 twice and reports the sizes: the folder, what `run` loads from it, the pack, the pack with --half.
Needs torch and dynamic-network-architectures (the test environment).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from offlinepack.kernel_kit.model_pack import pack_models  # noqa: E402
from offlinepack.units import format_size  # noqa: E402
from tests.support.nnunet import m7_architecture, write_nnunet_folder  # noqa: E402


def training_folder(root: Path) -> Path:
    folder = write_nnunet_folder(root / "Dataset001_Vesuvius" / "nnUNetTrainer__nnUNetResEncUNetLPlans__3d_fullres",
                                 architecture=m7_architecture(), patch_size=(128, 128, 128), folds=(0,),
                                 labels={"background": 0, "surface": 1, "other": 2})
    path = folder / "fold_0" / "checkpoint_final.pth"
    checkpoint = torch.load(path, weights_only=False)
    unique = {t.data_ptr(): t for t in checkpoint["network_weights"].values()}  # the decoder shares the encoder's
    params = [torch.nn.Parameter(t.clone().float()) for t in unique.values()
              if t.is_floating_point()]
    optimizer = torch.optim.SGD(params, lr=0.01, momentum=0.99, nesterov=True, weight_decay=3e-5)
    for p in params:
        p.grad = torch.randn_like(p) * 1e-3
    optimizer.step()
    checkpoint["optimizer_state"] = optimizer.state_dict()
    checkpoint["logging"] = {k: [0.5] * 1000 for k in ("mean_fg_dice", "ema_fg_dice", "train_losses", "val_losses",
                                                      "lrs", "epoch_start_timestamps", "epoch_end_timestamps")}
    torch.save(checkpoint, path)
    torch.save(checkpoint, folder / "fold_0" / "checkpoint_best.pth")
    validation = folder / "fold_0" / "validation"
    validation.mkdir()
    (validation / "summary.json").write_text(json.dumps({"foreground_mean": {"Dice": 0.5}}))
    (folder / "fold_0" / "training_log.txt").write_text("epoch 999: train_loss -0.5\n" * 4000)
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=None, help="working folder (default: a temporary one)")
    parser.add_argument("--json", type=Path, default=None, help="write the numbers here")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-model-pack-"))
    folder = training_folder(out)
    weights = torch.load(folder / "fold_0" / "checkpoint_final.pth", weights_only=False)["network_weights"]
    params = sum(t.numel() for t in {t.data_ptr(): t for t in weights.values()}.values())  # shared tensors once
    rows = {}
    for half in (False, True):
        started = time.perf_counter()
        result = pack_models([folder], out / ("pack-half" if half else "pack"), dataset_id="you/m7-fold0-model",
                             folds=["0"], half=half, force=True)
        model = result.models[0]
        rows["half" if half else "float32"] = {"seconds": round(time.perf_counter() - started, 1),
                                               "folder": model.source_folder_size, "loaded": model.size_before,
                                               "packed": model.size_after, "check": model.check}
    print(f"m7-sized ResEnc-L nnU-Net, {params / 1e6:.1f} M parameters; torch {torch.__version__}")
    print(f"training folder (fold 0 final + best, validation, log): {format_size(rows['float32']['folder'])}")
    print(f"what run loads from it (plans, dataset.json, checkpoint_final.pth): {format_size(rows['float32']['loaded'])}")
    for name, row in rows.items():
        print(f"packed ({name}): {format_size(row['packed'])} in {row['seconds']} s; check {row['check']}")
    if args.json:
        args.json.write_text(json.dumps({"parameters": params, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
