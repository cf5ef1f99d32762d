"""Targets: the interpreter, wheel tags, marker environment and installed distributions of a kernel."""

from offlinepack.target.model import FORMAT, InstalledDistribution, Target, dump_target, load_target_file, parse_target

__all__ = ["FORMAT", "InstalledDistribution", "Target", "dump_target", "load_target_file", "parse_target"]
