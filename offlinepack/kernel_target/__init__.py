"""Targets: the interpreter, wheel tags, marker environment and installed distributions of a kernel."""

from offlinepack.kernel_target.convert import target_from_inspect_folder
from offlinepack.kernel_target.model import FORMAT, InstalledDistribution, Target, dump_target, load_target_file, parse_target
from offlinepack.kernel_target.resolve import builtin_names, load_builtin, resolve_target
from offlinepack.kernel_target.snapshot import snapshot_current

__all__ = [
    "FORMAT",
    "InstalledDistribution",
    "Target",
    "builtin_names",
    "dump_target",
    "load_builtin",
    "load_target_file",
    "parse_target",
    "resolve_target",
    "snapshot_current",
    "target_from_inspect_folder",
]
