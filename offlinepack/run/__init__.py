"""`offlinepack run` as a library: `run_pipeline(load_run_toml(path))` or `run_pipeline(RunConfig(...))`."""

from offlinepack.run.config import DEMO_MODEL, RunConfig, apply_overrides, load_run_toml
from offlinepack.run.masks import VolumeResult
from offlinepack.run.pipeline import RunProgress, RunReport, run_pipeline
from offlinepack.run.plan import RunPlan, plan_run

__all__ = [
    "DEMO_MODEL",
    "RunConfig",
    "RunPlan",
    "RunProgress",
    "RunReport",
    "VolumeResult",
    "apply_overrides",
    "load_run_toml",
    "plan_run",
    "run_pipeline",
]
