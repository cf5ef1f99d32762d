#!/usr/bin/env python
"""Train the bundled demo checkpoint: the built-in U-Net on synthetic papyrus-like sheets, on CPU.

    .venv/bin/python scripts/train_demo_model.py                # 250 steps, ~4-5 minutes on 2 idle cores
    .venv/bin/python scripts/train_demo_model.py --steps 20 -o /tmp/unet

Writes `offlinepack/demo/unet/` (config.json + model.safetensors) unless -o says otherwise, then
prints the foreground Dice, after the default post-processing, on a held-out synthetic volume.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from offlinepack.demo import DEMO_CHECKPOINT
from offlinepack.demo.synthetic import make_sheet_volume
from offlinepack.models.builtin_unet import UNetConfig, build_unet, save_checkpoint
from offlinepack.post import PostConfig, postprocess
from offlinepack.units import format_size

HELD_OUT_SEED = 10_000


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(bool), b.astype(bool)
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else float(2 * (a & b).sum() / total)


def batches(volumes, patch: int, batch: int, rng: np.random.Generator):
    while True:
        images, labels = [], []
        for _ in range(batch):
            vol = volumes[int(rng.integers(len(volumes)))]
            start = [int(rng.integers(0, s - patch + 1)) for s in vol.image.shape]
            window = tuple(slice(s, s + patch) for s in start)
            image, label = vol.image[window], vol.label[window]
            for axis in range(3):
                if rng.random() < 0.5:
                    image, label = np.flip(image, axis), np.flip(label, axis)
            images.append(np.ascontiguousarray(image))
            labels.append(np.ascontiguousarray(label))
        yield torch.from_numpy(np.stack(images)[:, None]), torch.from_numpy(np.stack(labels)).long()


def predict_full(model: torch.nn.Module, config: UNetConfig, image: np.ndarray) -> np.ndarray:
    """Whole-volume forward pass (the held-out volume's sides are multiples of 8)."""
    with torch.no_grad():
        x = (torch.from_numpy(image).float()[None, None] - config.norm_mean) / config.norm_std
        return torch.softmax(model(x), dim=1)[0, config.surface_channel].numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--output", type=Path, default=DEMO_CHECKPOINT)
    parser.add_argument("--steps", type=int, default=250, help="optimiser steps (about 1 s each on 2 idle cores)")
    parser.add_argument("--minutes", type=float, default=10.0, help="time cap: stop earlier on a busy machine")
    parser.add_argument("--volumes", type=int, default=16)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--crop", type=int, default=64, help="training crop side")
    parser.add_argument("--patch", type=int, default=128,
                        help="inference patch side stored in the checkpoint: 128 covers the demo volume in one window")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    config = UNetConfig(
        features=(8, 16, 32, 64),
        patch_size=(args.patch,) * 3,  # the network is fully convolutional: trained on crops, run on patches
        extra={"trained_on": "synthetic sheets (offlinepack.demo.synthetic)", "script": "scripts/train_demo_model.py"},
    )
    model = build_unet(config)
    print(f"generating {args.volumes} training volumes ...", flush=True)
    volumes = [make_sheet_volume((96, 96, 96), seed=args.seed + 1 + i) for i in range(args.volumes)]
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    weight = torch.tensor([1.0, 2.0])  # sheets are ~10 % of voxels
    deadline = time.monotonic() + args.minutes * 60
    step = 0
    model.train()
    for images, labels in batches(volumes, args.crop, args.batch, rng):
        x = (images.float() - config.norm_mean) / config.norm_std
        logits = model(x)
        probs = torch.softmax(logits, dim=1)[:, 1]
        target = labels.float()
        soft_dice = 1 - (2 * (probs * target).sum() + 1) / (probs.sum() + target.sum() + 1)
        loss = F.cross_entropy(logits, labels, weight=weight) + soft_dice
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        step += 1
        if step % 20 == 0:
            print(f"step {step:4d}  loss {loss.item():.4f}  {max(0.0, deadline - time.monotonic()):.0f} s left", flush=True)
        if step >= args.steps or time.monotonic() > deadline:
            break
    model.eval()
    save_checkpoint(model, config, args.output)
    held_out = make_sheet_volume((128, 128, 128), seed=HELD_OUT_SEED)
    probability = predict_full(model, config, held_out.image)
    raw = dice(probability >= 0.5, held_out.label)
    post = dice(postprocess(probability.astype(np.float16), PostConfig()), held_out.label)
    size = sum(p.stat().st_size for p in Path(args.output).iterdir())
    print(f"trained {step} steps; checkpoint {args.output} ({format_size(size)})")
    print(f"held-out synthetic volume (seed {HELD_OUT_SEED}, 128^3): foreground Dice {raw:.4f} at threshold 0.5, {post:.4f} after post-processing")


if __name__ == "__main__":
    main()
