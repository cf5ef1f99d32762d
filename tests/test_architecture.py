"""The import graph keeps the house's shape (ARCHITECTURE.md): read with ast from the package's files, so
lazy imports inside functions count too."""

from __future__ import annotations

import ast
import functools
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "offlinepack"
# cli modules that are not commands: the app that registers them all, and shared helpers
CLI_HELPERS = {"offlinepack.cli", "offlinepack.cli.app", "offlinepack.cli.group", "offlinepack.cli.output",
               "offlinepack.cli.progress",
               "offlinepack.cli.options"}
PACKAGING = ("offlinepack.kernel_target", "offlinepack.lock", "offlinepack.wheelhouse", "offlinepack.pylock")
RUN_SIDE = ("offlinepack.run", "offlinepack.inference", "offlinepack.models", "offlinepack.post",
            "offlinepack.submission", "offlinepack.volumes", "offlinepack.ledger", "offlinepack.demo",
            "offlinepack.doctor", "offlinepack.score", "offlinepack.calibrate")
# edges in files other branches are editing now; each goes once they are merged (issue 9)
KNOWN_UNTIL_MERGE: set[tuple[str, str]] = set()


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, module: str) -> set[str]:
    """Every module `path` imports, absolute names; `from a import b` counts as a.b when a.b is a module."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


@functools.cache
def _graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {i for i in _imports(path, name) if i in files or not i.startswith("offlinepack")}
            for name, path in files.items()}


def _within(name: str, prefixes: Iterable[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_only_cli_imports_cli() -> None:
    outside = (m for m in _graph() if not _within(m, ["offlinepack.cli"]) and m != "offlinepack.__main__")
    bad = {(m, i) for m in outside for i in _graph()[m] if _within(i, ["offlinepack.cli"])}
    assert bad == set()


def test_no_command_imports_another_command() -> None:
    commands = {m for m in _graph() if _within(m, ["offlinepack.cli"]) and m not in CLI_HELPERS}
    bad = {(m, i) for m in commands for i in _graph()[m] if i in commands and i != m}
    assert bad - KNOWN_UNTIL_MERGE == set()


def test_packaging_side_never_reaches_torch_or_the_run_side() -> None:
    """Transitively: a laptop without torch can lock and build."""
    graph = _graph()
    for start in (m for m in graph if _within(m, PACKAGING)):
        seen, todo, parent = {start}, [start], {}
        while todo:
            current = todo.pop()
            for imported in graph.get(current, ()):
                if imported not in seen:
                    seen.add(imported)
                    parent[imported] = current
                    todo.append(imported)
        for bad in sorted(m for m in seen if _within(m, RUN_SIDE) or _within(m, ["torch"])):
            chain = [bad]
            while chain[-1] != start:
                chain.append(parent[chain[-1]])
            raise AssertionError(" <- ".join(chain))


def test_the_graph_is_read() -> None:
    """Guards the reader itself: known edges are seen, relative imports resolved."""
    graph = _graph()
    assert "offlinepack.pylock" in graph["offlinepack.wheelhouse.assemble"]
    assert "offlinepack.kernel" in graph["offlinepack.doctor.packages"]
    assert "offlinepack.kernel_target.model" in graph["offlinepack.kernel_target"]


def test_no_class_name_is_defined_twice() -> None:
    where: dict[str, list[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef):
                where.setdefault(node.name, []).append(_module_name(path))
    twice = {name for name, modules in where.items() if len(modules) > 1}
    assert twice == set(), {name: where[name] for name in twice}


def test_run_config_and_inference_settings_load_without_torch() -> None:
    """run.toml is checked against InferenceSettings itself: reading a config must not cost a torch import."""
    code = ("import sys, offlinepack.run.config, offlinepack.inference.settings, offlinepack.inference; "
            "from offlinepack.inference import InferenceSettings, ModelLoadError; "
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
    from offlinepack.inference.settings import InferenceSettings
    from offlinepack.run.config import INFERENCE_KEYS

    assert list(INFERENCE_KEYS) == [f for f in InferenceSettings.__dataclass_fields__ if f != "compile_backend"]


def test_no_test_module_imports_another() -> None:
    """Helpers shared by tests (and benchmarks) live in tests/support/, never in a test module."""
    repo = PACKAGE.parent
    bad = []
    for path in [*(repo / "tests").rglob("*.py"), *(repo / "scripts").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
                     if isinstance(node, ast.ImportFrom) else [])
            bad += [f"{path.relative_to(repo)}: {name}" for name in names
                    if name.split(".")[0] == "tests" and any(p.startswith("test_") for p in name.split(".")[1:])]
    assert bad == []
