"""run.toml parsing, CLI overrides, output planning (kernel vs not, demo defaults)."""

from __future__ import annotations

from pathlib import Path

import pytest

from offlinepack.errors import OfflinepackError
from offlinepack.run import RunConfig, apply_overrides, load_run_toml, plan_run
from offlinepack.run.plan import check_writable


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(text)
    return path


def test_full_run_toml_relative_paths_resolved_against_its_folder(tmp_path: Path) -> None:
    config = load_run_toml(_toml(tmp_path, """
models = ["m1", "/abs/m2", "demo"]
weights = [1, 2, 1]
folds = [0, 1]
input = "data"
output = "out/submission.zip"
ledger = "runs.jsonl"
overwrite = true
workers = 3
[post]
threshold = 0.3
hysteresis_low = 0.2
min_component_voxels = 20000
fill_holes = "2d"
[inference]
step_size = 0.5
mirror_axes = [0, 2]
precision = "fp16"
device = "cpu"
"""))
    assert config.models == (str(tmp_path / "m1"), "/abs/m2", "demo")
    assert config.weights == (1.0, 2.0, 1.0) and config.folds == (0, 1)
    assert config.input == tmp_path / "data" and config.output == tmp_path / "out/submission.zip"
    assert config.post.threshold == 0.3 and config.post.fill_holes == "2d" and config.post.min_component_voxels == 20000
    assert config.inference == {"step_size": 0.5, "mirror_axes": (0, 2), "precision": "fp16", "device": "cpu"}
    assert config.overwrite is True and config.workers == 3


def test_unknown_keys_and_wrong_types_all_named(tmp_path: Path) -> None:
    with pytest.raises(OfflinepackError) as info:
        load_run_toml(_toml(tmp_path, 'model = ["x"]\noverwrite = "yes"\n'))
    text = "\n".join(info.value.lines())
    assert "unknown key 'model'" in text and "overwrite: expected true/false" in text
    with pytest.raises(OfflinepackError) as info:
        load_run_toml(_toml(tmp_path, "[post]\ntreshold = 0.3\n"))
    assert "unknown key in [post]: treshold (known: threshold," in "\n".join(info.value.lines())
    with pytest.raises(OfflinepackError) as info:
        load_run_toml(_toml(tmp_path, "[inference]\nmirror = [0]\n"))
    assert "unknown key in [inference]: mirror" in "\n".join(info.value.lines())
    with pytest.raises(OfflinepackError, match="not valid TOML"):
        load_run_toml(_toml(tmp_path, "models = [\n"))
    with pytest.raises(OfflinepackError, match="does not exist"):
        load_run_toml(tmp_path / "absent.toml")


def test_flags_override_file_key_by_key(tmp_path: Path) -> None:
    base = load_run_toml(_toml(tmp_path, '[post]\nthreshold = 0.3\nfill_holes = "none"\n[inference]\ndevice = "cpu"\n'))
    merged = apply_overrides(base, post={"threshold": 0.4}, inference={"precision": "fp32"}, models=["demo"], overwrite=None)
    assert merged.post.threshold == 0.4 and merged.post.fill_holes == "none"
    assert merged.inference == {"device": "cpu", "precision": "fp32"}
    assert merged.models == ("demo",) and merged.overwrite is False
    with pytest.raises(OfflinepackError, match="2 weight"):
        apply_overrides(RunConfig(models=("a",)), weights=[1.0, 2.0])


def test_plan_outside_kernel_uses_demo_and_cwd(tmp_path: Path) -> None:
    plan = plan_run(RunConfig(), kaggle_root=tmp_path / "no-kaggle", cwd=tmp_path, temp_root=tmp_path / "tmp")
    assert plan.demo and not plan.in_kernel
    assert plan.output == tmp_path / "submission.zip" and plan.work_dir == tmp_path / "submission-masks"
    assert plan.config.inference["mirror_axes"] == ()
    assert (plan.config.input / "test_images").is_dir() and (plan.config.input / "test.csv").is_file()
    assert plan.models[0].name == "unet"


def test_plan_in_kernel_needs_a_model_and_writes_to_working(tmp_path: Path) -> None:
    kaggle = tmp_path / "kaggle"
    (kaggle / "working").mkdir(parents=True)
    with pytest.raises(OfflinepackError) as info:
        plan_run(RunConfig(), kaggle_root=kaggle, cwd=tmp_path)
    assert info.value.problems[0].startswith("no model given: pass --model PATH")
    plan = plan_run(RunConfig(models=("demo",)), kaggle_root=kaggle, cwd=tmp_path)
    assert plan.in_kernel and plan.output == kaggle / "working" / "submission.zip"
    with pytest.raises(OfflinepackError) as info:
        plan_run(RunConfig(models=(str(tmp_path / "nope"),)), kaggle_root=kaggle)
    assert info.value.problems == (f"model path {tmp_path / 'nope'} does not exist",)


def test_every_argument_problem_is_reported_at_once(tmp_path: Path) -> None:
    with pytest.raises(OfflinepackError) as info:
        plan_run(RunConfig(input=tmp_path / "missing"), kaggle_root=tmp_path / "no-kaggle", cwd=tmp_path)
    assert info.value.message == "cannot start the run"
    assert info.value.problems[0] == f"input folder {tmp_path / 'missing'} does not exist (or is not a folder)"
    assert info.value.problems[1].startswith("no model given")


def test_output_not_writable_is_caught_before_any_work(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    plan = plan_run(RunConfig(models=("demo",), input=tmp_path, output=blocker / "submission.zip"), kaggle_root=tmp_path)
    with pytest.raises(OfflinepackError, match="is not writable"):
        check_writable(plan)
    folder_output = plan_run(RunConfig(models=("demo",), input=tmp_path, output=tmp_path), kaggle_root=tmp_path / "k")
    with pytest.raises(OfflinepackError, match="is a folder"):
        check_writable(folder_output)


def test_every_run_toml_problem_is_named_in_one_go(tmp_path: Path) -> None:
    """Top level, [post], [inference], list items and ranges together: one edit fixes them all."""
    text = (
        'modles = ["demo"]\nthreshold = 0.4\nmodels = ["demo", 3]\nfolds = [0.5]\nworkers = 0\n'
        '[post]\nthreshhold = 0.3\nfill_holes = "4d"\nmin_component_voxels = "many"\n'
        '[inference]\ndevise = "cpu"\nmirror_axes = ["x"]\n'
    )
    with pytest.raises(OfflinepackError) as info:
        load_run_toml(_toml(tmp_path, text))
    assert info.value.message.endswith("invalid run config")
    assert set(info.value.problems) == {
        "unknown key 'modles' (known: models, weights, folds, input, output, ledger, overwrite, force, workers, "
        "prefetch, on_error, post, inference)",
        "unknown key 'threshold' (it belongs under [post])",
        "models: expected a list of strings, got ['demo', 3]",
        "folds: expected a list of integers, got [0.5]",
        "workers: must be >= 1, got 0",
        "unknown key in [post]: threshhold (known: threshold, hysteresis_low, min_component_voxels, fill_holes, "
        "components_backend, threshold_rule, foreground_fraction, rule_quantile, rule_factor, "
        "min_component_mean_probability, closing_radius, max_hole_voxels, plug_holes)",
        "post.min_component_voxels: expected integer, got 'many'",
        "post.fill_holes must be one of 3d, 2d, none, got '4d'",
        "unknown key in [inference]: devise (known: step_size, mirror_axes, batch_size, precision, device, compile)",
        "inference.mirror_axes: expected a list of integers, got ['x']",
    }
    assert "offlinepack/run/config.py" in info.value.hint
