"""`ablate`: leave-one-out contributions with the real scorer; a noise member is named harmful; the CLI
runs real models (the demo U-Net and a copy with random weights), saves and then reuses their maps."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage
from typer.testing import CliRunner

from offlinepack.calibrate import LocalPool
from offlinepack.calibrate.ablation import Member, ablate
from offlinepack.cli.app import app
from offlinepack.post import PostConfig
from offlinepack.probabilities import encode, open_probabilities
from tests.support.planted import write_planted_set

SHAPE = (32, 32, 32)


def _member(name: str, folder: Path, seconds: float) -> tuple[Member, object]:
    return Member(name, name, name * 8, folder, False, seconds), open_probabilities(folder)


def test_a_noise_member_is_named_harmful_and_left_out_of_the_recommendation(tmp_path: Path) -> None:
    scales = [0.9] * 5
    good_a, labels = write_planted_set(tmp_path / "a", scales, shape=SHAPE)
    good_b, _ = write_planted_set(tmp_path / "b", [0.8] * 5, shape=SHAPE)
    noise = tmp_path / "noise"
    noise.mkdir()
    rng = np.random.default_rng(7)
    for path in sorted(good_a.glob("*.npy")):
        smooth = ndimage.gaussian_filter(rng.random(SHAPE).astype(np.float32), 3.0)
        # rank-transformed: uniform in [0, 1], in blobs: a confident model that sees sheets everywhere
        ranks = np.argsort(np.argsort(smooth.ravel())).reshape(SHAPE) / smooth.size
        np.save(noise / path.name, encode(ranks))
    members = [_member("a", good_a, 1.0), _member("b", good_b, 1.0), _member("noise", noise, 2.0)]
    result = ablate(members, labels, post=PostConfig(threshold=0.3, min_component_voxels=40),
                    budget_seconds_per_volume=2.5, pool=LocalPool(1))
    verdicts = {c.name: c.verdict for c in result.contributions}
    assert verdicts["noise"] == "harmful", result.to_dict()["contributions"]
    drop = {c.name: c.drop for c in result.contributions}
    assert drop["noise"].high < 0 < drop["a"].mean + 1.0  # removing the noise raises the score
    assert {c.name: c.time_share for c in result.contributions}["noise"] == pytest.approx(0.5)
    assert result.recommended is not None and "noise" not in result.recommended
    assert len(result.subsets) == 7  # every non-empty subset of 3
    assert all(row[2] <= 4.0 for row in result.subsets if "noise" not in row[0])


def _random_weights_copy(folder: Path) -> Path:
    import safetensors.numpy as stn

    from offlinepack.demo import DEMO_CHECKPOINT

    shutil.copytree(DEMO_CHECKPOINT, folder)
    tensors = stn.load_file(str(folder / "model.safetensors"))
    rng = np.random.default_rng(0)
    stn.save_file({k: rng.normal(0, 0.2, v.shape).astype(v.dtype) for k, v in tensors.items()},
                  str(folder / "model.safetensors"))
    return folder


@pytest.mark.slow  # two real models on CPU (about 30 s on an idle 2-core machine)
def test_cli_runs_each_model_once_and_reuses_its_maps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    env = {"OFFLINEPACK_KAGGLE_ROOT": str(tmp_path / "no-kaggle")}
    made = CliRunner().invoke(app, ["demo-set", "data", "--count", "2", "--size", "32"], env=env,
                              catch_exceptions=False)
    assert made.exit_code == 0, made.output
    noisy = _random_weights_copy(tmp_path / "noisy-unet")
    args = ["ablate", "-m", "demo", "-m", str(noisy), "-i", "data/train_images", "-l", "data/train_labels",
            "--workers", "1", "--json"]
    first = CliRunner().invoke(app, args, env=env, catch_exceptions=False)
    assert first.exit_code == 0, first.output
    report = json.loads(first.output)
    assert [m["reused"] for m in report["members"]] == [False, False]
    assert all(m["seconds_per_volume"] > 0 for m in report["members"])
    assert {c["verdict"] for c in report["contributions"]} <= {"helps", "harmful", "unclear"}
    assert sum(c["time_share"] for c in report["contributions"]) == pytest.approx(1.0)
    again = CliRunner().invoke(app, args, env=env, catch_exceptions=False)
    assert again.exit_code == 0, again.output
    second = json.loads(again.output)
    assert [m["reused"] for m in second["members"]] == [True, True]
    assert second["full"] == report["full"]
    records = [json.loads(line) for line in (tmp_path / "offlinepack-runs.jsonl").read_text().splitlines()]
    assert [r["type"] for r in records if r["type"] == "ablation"] == ["ablation", "ablation"]
