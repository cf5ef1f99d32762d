"""offlinepack's own kernel-side requirements are checked against the target + what the wheelhouse ships."""

from __future__ import annotations

from dataclasses import replace

from offlinepack.kernel_target import InstalledDistribution
from offlinepack.wheelhouse.runtime_needs import own_requirements, runtime_gaps
from tests.support.locks import make_target

REQUIRES = ("packaging>=25", "typer>=0.12", "tomli>=2; python_version < '3.11'", "uv>=0.8", "uv>=0.8; extra == 'lock'",
            "numpy>=1.24; extra == 'run'", "safetensors>=0.4; extra == 'run'", "pytest>=8; extra == 'test'")


def kernel(**versions: str):
    return replace(make_target(), installed=tuple(InstalledDistribution(name=n, version=v) for n, v in versions.items()))


def test_everything_present_means_no_gap():
    target = kernel(packaging="26.1", typer="0.24.2", numpy="2.0.2")
    assert runtime_gaps(target, {"safetensors": "0.8.0"}, REQUIRES) == []


def test_missing_and_too_old_are_named_with_the_fix():
    target = kernel(packaging="24.0", typer="0.24.2", numpy="2.0.2")  # no safetensors, old packaging
    gaps = runtime_gaps(target, {}, REQUIRES)
    assert gaps == [
        "offlinepack needs packaging>=25; the target has 24.0",
        "offlinepack needs safetensors>=0.4 in the kernel, but target test-kernel does not have it and the lock "
        "does not ship it: add `safetensors` to your requirements and lock again",
    ]  # uv (core, but only `lock` imports it), pytest (test extra) and tomli (python < 3.11; the target is 3.12) are not kernel needs


def test_the_installed_offlinepack_declares_its_kernel_needs():
    names = {r.split(">")[0].split(";")[0].strip() for r in own_requirements()}
    assert {"typer", "packaging", "numpy", "tifffile", "pillow"} <= names and "torch" not in names
