"""`offlinepack run` as a library: `run_pipeline(load_run_toml(path))` or `run_pipeline(RunConfig(...))`."""

from offlinepack.runner.config import DEMO_MODEL, RunConfig, apply_overrides, load_run_toml
from offlinepack.runner.masks import VolumeResult
from offlinepack.runner.pipeline import RunProgress, RunReport, run_pipeline
from offlinepack.runner.plan import RunPlan, in_kernel, plan_run

__all__ = [
    "DEMO_MODEL",
    "RunConfig",
    "RunPlan",
    "RunProgress",
    "RunReport",
    "VolumeResult",
    "apply_overrides",
    "in_kernel",
    "load_run_toml",
    "plan_run",
    "run_pipeline",
]
