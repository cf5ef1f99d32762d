"""Fault injection for `run` and `validate` (issue 10): every output they write and every file they read.

The matrix is explicit: OUTPUT_MATRIX is (command target x special-file/disk fault), INPUT_MATRIX is (file read
x truncation offset or wrong type per field). Expected for every case: the documented exit code, an `error:`
or `problem:` line plus a `hint:` line, and no change to existing outputs (the earlier submission.zip stays
byte-identical unless the case is one that legitimately succeeds, e.g. -o through a symlink).

Real files throughout: LZW TIFF volumes, mask zips, run.toml, a built-in U-Net checkpoint (tiny, so CPU runs
take a second), FIFOs and device nodes, read-only and full tmpfs mounts (root) or chmod / RLIMIT_FSIZE.
`bash scripts/test.sh tests/test_faults_run.py` prints the matrix as parametrized ids (`-v`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import tifffile

from tests.support.cli import invoke, write_competition
from tests.support.runs import TINY, ledger_records, mask_zip, write_tiny_model

REPO = Path(__file__).resolve().parent.parent
ROOT = os.geteuid() == 0
FAST = ["--mirror-axes", "none", "--step-size", "1"]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("model") / "tiny-unet")


def _old_zip(path: Path) -> bytes:
    """A real, valid earlier submission for the one 32^3 test volume '11'."""
    mask = np.zeros(TINY, np.uint8)
    mask[:, 7, :] = 1
    return mask_zip(path, {"11": mask}).read_bytes()


def _has_hint(output: str) -> bool:
    return "hint: " in output


# ------------------------------------------------------------------ places where outputs live

@contextlib.contextmanager
def _mount_tmpfs(folder: Path, size: str) -> Iterator[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@contextlib.contextmanager
def read_only_folder(folder: Path, fill) -> Iterator[Path]:
    """A folder holding what `fill(folder)` writes, then made read-only: a read-only tmpfs when root (root
    ignores permission bits), else chmod 0555."""
    if ROOT:
        with _mount_tmpfs(folder, "4m"):
            fill(folder)
            subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
            yield folder
        return
    folder.mkdir(parents=True)
    fill(folder)
    folder.chmod(0o555)
    try:
        yield folder
    finally:
        folder.chmod(0o755)


@contextlib.contextmanager
def full_folder(folder: Path, fill) -> Iterator[Path]:
    """A folder on a disk with no space left (a small tmpfs filled up; root only)."""
    if not ROOT:
        pytest.skip("a full disk needs a tmpfs mount (root); the RLIMIT_FSIZE cases cover non-root")
    with _mount_tmpfs(folder, "2m"):
        fill(folder)
        handle = os.open(folder / ".filler", os.O_WRONLY | os.O_CREAT)
        try:
            with contextlib.suppress(OSError):
                while os.write(handle, bytes(4096)):
                    pass
        finally:
            os.close(handle)
        yield folder


def _special(path: Path, kind: str) -> None:
    if kind == "fifo":
        os.mkfifo(path)
    else:
        if not ROOT:
            pytest.skip("creating a device node needs root")
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a /dev/null twin


def _run_in_subprocess(args: list[str], env: dict[str, str], fsize: int) -> subprocess.CompletedProcess:
    """`offlinepack ARGS` with RLIMIT_FSIZE set (SIGXFSZ ignored, so writes fail with EFBIG instead)."""
    script = ("import resource, signal, sys\nsignal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
              f"resource.setrlimit(resource.RLIMIT_FSIZE, ({fsize}, {fsize}))\n"
              "from offlinepack.cli.app import main\nsys.argv = ['offlinepack', *sys.argv[1:]]\nmain()\n")
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=300,
                          cwd=REPO, env={**os.environ, **env})


# ------------------------------------------------------------------ output matrix

OUTPUT_FAULTS = ("symlink", "fifo", "device", "read_only_dir", "full_disk", "file_size_limit")
OUTPUT_TARGETS = ("run -o", "run --ledger", "validate ZIP")
OUTPUT_MATRIX = [(target, fault) for target in OUTPUT_TARGETS for fault in OUTPUT_FAULTS]


@dataclass
class Outcome:
    code: int
    output: str


def _run_cli(args: list[str], env: dict[str, str], fsize: int | None = None) -> Outcome:
    if fsize is None:
        result = invoke(args, env)
        return Outcome(result.exit_code, result.output)
    done = _run_in_subprocess(args, env, fsize)
    return Outcome(done.returncode, done.stdout + done.stderr)


@pytest.mark.parametrize(("target", "fault"), OUTPUT_MATRIX, ids=[f"{t}/{f}" for t, f in OUTPUT_MATRIX])
def test_output_faults(tmp_path: Path, env, model: Path, target: str, fault: str) -> None:
    data = write_competition(tmp_path / "comp", {"11": TINY})
    run = ["run", "--model", str(model), "--input", str(data), *FAST]
    if target == "validate ZIP":
        _validate_zip_fault(tmp_path, env, data, fault)
        return
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    old = _old_zip(out_dir / "submission.zip")
    old_ledger = b'{"type":"run","run_id":"earlier","status":"ok","exit_code":0}\n'

    if target == "run -o":
        where = tmp_path / "fault"
        if fault == "symlink":  # written through: the link stays a link, its target gets the new zip
            real = tmp_path / "real" / "target.zip"
            real.parent.mkdir()
            real.write_bytes(old)
            link = out_dir / "link.zip"
            link.symlink_to(real)
            result = _run_cli([*run, "-o", str(link)], env)
            assert result.code == 0, result.output
            assert link.is_symlink() and real.read_bytes() != old
            assert invoke(["validate", str(real), "--input", str(data)], env).exit_code == 0
            return
        if fault in ("fifo", "device"):
            special = out_dir / "special.zip"
            _special(special, fault)
            result = _run_cli([*run, "-o", str(special)], env)
            assert result.code == 2 and "not a regular file" in result.output, result.output
            assert _has_hint(result.output) and not stat.S_ISREG(special.stat().st_mode)
            assert not (out_dir / "special-masks").exists() and not (out_dir / "offlinepack-runs.jsonl").exists()
            return
        fill = lambda folder: (folder / "submission.zip").write_bytes(old)  # noqa: E731
        if fault == "read_only_dir":
            with read_only_folder(where, fill) as folder:
                result = _run_cli([*run, "-o", str(folder / "submission.zip")], env)
                assert result.code == 2 and "is not writable" in result.output, result.output
                assert _has_hint(result.output) and (folder / "submission.zip").read_bytes() == old
            return
        if fault == "full_disk":
            with full_folder(where, fill) as folder:
                result = _run_cli([*run, "-o", str(folder / "submission.zip")], env)
                assert result.code == 2 and "its disk is full" in result.output, result.output
                assert _has_hint(result.output) and (folder / "submission.zip").read_bytes() == old
                assert sorted(p.name for p in folder.iterdir()) == [".filler", "submission.zip"]
            return
        if fault == "file_size_limit":  # masks cannot be written (EFBIG), nor then the run's record
            result = _run_cli([*run, "-o", str(out_dir / "submission.zip")], env, fsize=1024)
            assert result.code == 2 and "could not be recorded" in result.output, result.output
            assert "File too large" in result.output and "the run itself finished with exit code 1" in result.output
            assert _has_hint(result.output) and (out_dir / "submission.zip").read_bytes() == old
            assert not list(out_dir.glob(".submission.zip.*"))
            return

    if target == "run --ledger":
        out = ["-o", str(out_dir / "submission.zip")]
        if fault == "symlink":  # appended through the link
            real = tmp_path / "real" / "runs.jsonl"
            real.parent.mkdir()
            real.write_bytes(old_ledger)
            link = tmp_path / "runs-link.jsonl"
            link.symlink_to(real)
            result = _run_cli([*run, *out, "--ledger", str(link)], env)
            assert result.code == 0, result.output
            assert link.is_symlink() and real.read_bytes().startswith(old_ledger)
            assert [r["exit_code"] for r in ledger_records(real)] == [0, 0]
            return
        if fault in ("fifo", "device"):
            special = tmp_path / "runs.jsonl"
            _special(special, fault)
            result = _run_cli([*run, *out, "--ledger", str(special)], env)
            assert result.code == 2 and "is not a regular file" in result.output, result.output
        elif fault == "read_only_dir":
            with read_only_folder(tmp_path / "ro", lambda f: (f / "runs.jsonl").write_bytes(old_ledger)) as folder:
                result = _run_cli([*run, *out, "--ledger", str(folder / "runs.jsonl")], env)
                assert result.code == 2 and "is not writable" in result.output, result.output
                assert (folder / "runs.jsonl").read_bytes() == old_ledger
        elif fault == "full_disk":
            with full_folder(tmp_path / "full", lambda f: (f / "runs.jsonl").write_bytes(old_ledger)) as folder:
                result = _run_cli([*run, *out, "--ledger", str(folder / "runs.jsonl")], env)
                assert result.code == 2 and "its disk is full" in result.output, result.output
                assert (folder / "runs.jsonl").read_bytes() == old_ledger
        elif fault == "file_size_limit":  # the extra ledger is already near the limit: refused up front
            big = tmp_path / "runs.jsonl"
            big.write_bytes(old_ledger * 40000)
            result = _run_cli([*run, *out, "--ledger", str(big)], env, fsize=2 << 20)
            assert result.code == 2 and "file size limit (ulimit -f)" in result.output, result.output
            assert big.read_bytes() == old_ledger * 40000
        assert _has_hint(result.output)
        assert (out_dir / "submission.zip").read_bytes() == old  # refused before any work
        assert sorted(p.name for p in out_dir.iterdir()) == ["submission.zip"]


def _validate_zip_fault(tmp_path: Path, env, data: Path, fault: str) -> None:
    """validate reads ZIP and writes nothing: special files are refused (2), the rest validates (0)."""
    check = ["--input", str(data)]
    if fault == "symlink":
        real = tmp_path / "real.zip"
        _old_zip(real)
        link = tmp_path / "link.zip"
        link.symlink_to(real)
        result = _run_cli(["validate", str(link), *check], env)
        assert result.code == 0, result.output
    elif fault in ("fifo", "device"):
        special = tmp_path / "special.zip"
        _special(special, fault)
        result = _run_cli(["validate", str(special), *check], env)
        assert result.code == 2 and "is not a regular file" in result.output and _has_hint(result.output)
    elif fault == "read_only_dir":
        with read_only_folder(tmp_path / "ro", lambda f: _old_zip(f / "submission.zip")) as folder:
            assert _run_cli(["validate", str(folder / "submission.zip"), *check], env).code == 0
    elif fault == "full_disk":  # its temp files (spooled entries) have nowhere to go: still checked in memory
        with full_folder(tmp_path / "full", lambda f: _old_zip(f / "submission.zip")) as folder:
            result = _run_cli(["validate", str(folder / "submission.zip"), *check], {**env, "TMPDIR": str(folder)})
            assert result.code == 0, result.output
    elif fault == "file_size_limit":
        _old_zip(tmp_path / "submission.zip")
        result = _run_cli(["validate", str(tmp_path / "submission.zip"), *check], env, fsize=1024)
        assert result.code == 0, result.output


# ------------------------------------------------------------------ input matrix: files `run` and `validate` read

RUN_TOML = ('models = ["MODEL"]\ninput = "INPUT"\noutput = "OUTPUT"\nworkers = 1\nprefetch = 1\noverwrite = false\n'
            '[post]\nthreshold = 0.5\nmin_component_voxels = 0\nfill_holes = "none"\n'
            '[inference]\nstep_size = 1.0\nmirror_axes = []\ndevice = "cpu"\nprecision = "fp32"\n')
# one wrong-typed value per run.toml field (top level, [post], [inference])
TOML_WRONG_TYPES = {
    "models": "models = 5", "weights": 'weights = "heavy"', "folds": "folds = {a = 1}", "input": "input = 3",
    "output": "output = true", "ledger": "ledger = [1]", "overwrite": 'overwrite = "yes"', "force": "force = 1",
    "workers": 'workers = "two"', "prefetch": "prefetch = 1.5", "on_error": "on_error = 0",
    "post": "post = 3", "inference": 'inference = "fast"',
    "post.threshold": '[post]\nthreshold = "high"', "post.hysteresis_low": "[post]\nhysteresis_low = [0.2]",
    "post.min_component_voxels": "[post]\nmin_component_voxels = 1.5", "post.fill_holes": "[post]\nfill_holes = 3",
    "post.components_backend": "[post]\ncomponents_backend = false",
    "inference.step_size": '[inference]\nstep_size = "half"', "inference.mirror_axes": "[inference]\nmirror_axes = 0",
    "inference.batch_size": "[inference]\nbatch_size = 2.5", "inference.precision": "[inference]\nprecision = 16",
    "inference.device": "[inference]\ndevice = 0", "inference.compile": '[inference]\ncompile = "yes"',
}
TOML_CUTS = (len('models = ["'), RUN_TOML.index('[post]') + 3, RUN_TOML.index('fill_holes = "') + 15)

UNET_CONFIG_WRONG_TYPES = {
    "format": 1, "version": "1", "in_channels": "one", "out_channels": [2], "features": 8, "patch_size": "16",
    "norm_mean": "zero", "norm_std": None, "activation": 5, "surface_channel": "1",
}
CSV_TEXT = "id,scroll_id\n11,1\n"
CSV_CASES = {  # content -> (exit code, words in the output)
    "cut@0": ("", 2, "no 'id' column"), "cut@1": ("i", 2, "no 'id' column"),
    "cut@13": ("id,scroll_id\n", 2, "lists no ids"),
    # an id without its file, and nothing else to run: readiness refuses to start (2)
    "cut@14": ("id,scroll_id\n1", 2, "1 id(s) in test.csv without a file: 1"),
    "type:id-empty": ("id,scroll_id\n,1\n", 2, "lists no ids"),
    "type:id-path": ("id,scroll_id\n../11,1\n", 2, "without a file: ../11"),
    "type:utf16": ("\ufeffid,scroll_id\n11,1\n".encode("utf-16").hex(), 2, "cannot read it"),
    "type:scroll_id-text": ("id,scroll_id\n11,abc\n", 0, "wrote "),
}


def _tiff_bytes(tmp_path: Path) -> bytes:
    return (write_competition(tmp_path / "ref", {"11": TINY}) / "test_images" / "11.tif").read_bytes()


TIFF_CUTS = {"cut@0": 0, "cut@8": 8, "cut@1/3": 1 / 3, "cut@2/3": 2 / 3, "cut@-200": -200}
TIFF_WRONG_TYPES = {  # array written with tifffile -> expected exit code (0: converted, the run goes on)
    "float32-nan": (np.where(np.arange(32 ** 3).reshape(TINY) == 5, np.nan, 10.0).astype(np.float32), 1),
    "float64-inf": (np.where(np.arange(32 ** 3).reshape(TINY) == 5, -np.inf, 10.0), 1),
    "float32-0..1": (np.linspace(0, 1, 32 ** 3, dtype=np.float32).reshape(TINY), 0),
    "uint16": (np.arange(32 ** 3, dtype=np.uint16).reshape(TINY), 0),
    "int8-negative": (np.full(TINY, -5, np.int8), 0),
    "rgb-pages": (np.zeros((*TINY, 3), np.uint8), 1),
    "2d-page": (np.zeros(TINY[1:], np.uint8), 1),
}
ZIP_CUTS = {"cut@0": 0, "cut@10": 10, "cut@1/2": 0.5, "cut-eocd": -22}
ZIP_WRONG_TYPES = {  # entry name -> mask array (or bytes), each makes the zip invalid
    "2d-entry": ("11.tif", np.zeros(TINY[1:], np.uint8)),
    "uint16-entry": ("11.tif", np.zeros(TINY, np.uint16)),
    "values-0-2": ("11.tif", np.full(TINY, 2, np.uint8)),
    "float-entry": ("11.tif", np.zeros(TINY, np.float32)),
    "nested-name": ("masks/11.tif", np.zeros(TINY, np.uint8)),
    "not-tif-name": ("11.png", np.zeros(TINY, np.uint8)),
    "bytes-entry": ("11.tif", b"\x00" * 100),
}

INPUT_MATRIX = (
    [("run.toml", f"cut@{c}") for c in TOML_CUTS]
    + [("run.toml", f"type:{k}") for k in TOML_WRONG_TYPES]
    + [("model config.json", "cut@" + str(c)) for c in ("0", "1/3", "2/3", "-2")]
    + [("model config.json", f"type:{k}") for k in UNET_CONFIG_WRONG_TYPES]
    + [("model weights", "cut@1/2")]
    + [("test.csv", k) for k in CSV_CASES]
    + [("TIFF volume", k) for k in TIFF_CUTS]
    + [("TIFF volume", f"type:{k}") for k in TIFF_WRONG_TYPES]
    + [("zip", k) for k in ZIP_CUTS]
    + [("zip", f"type:{k}") for k in ZIP_WRONG_TYPES]
)


def _cut(data: bytes, where: float) -> bytes:
    if isinstance(where, float):
        return data[: int(len(data) * where)]
    return data[:where] if where >= 0 else data[: len(data) + where]


@pytest.mark.parametrize(("source", "fault"), INPUT_MATRIX, ids=[f"{s}/{f}" for s, f in INPUT_MATRIX])
def test_input_faults(tmp_path: Path, env, model: Path, source: str, fault: str) -> None:
    data = write_competition(tmp_path / "comp", {"11": TINY})
    out = tmp_path / "out" / "submission.zip"
    old = _old_zip(out)
    run = ["run", "--model", str(model), "--input", str(data), "-o", str(out), *FAST]
    kind, _, case = fault.partition(":") if fault.startswith("type:") else ("cut", "", fault)

    if source == "run.toml":
        text = RUN_TOML.replace("MODEL", str(model)).replace("INPUT", str(data)).replace("OUTPUT", str(out))
        if kind == "type":
            text = TOML_WRONG_TYPES[case] + "\n"
        else:
            text = text[: int(fault.split("@")[1])]
        (tmp_path / "run.toml").write_text(text)
        result = invoke(["run", "--config", str(tmp_path / "run.toml"), "-o", str(out)], env)
        assert result.exit_code == 2, result.output
        named = case.split(".")[-1] if kind == "type" else "not valid TOML"
        assert named in result.output and _has_hint(result.output), result.output
        assert not (out.parent / "submission-masks").exists() and not (out.parent / "offlinepack-runs.jsonl").exists()
    elif source in ("model config.json", "model weights"):
        broken = tmp_path / "model"
        shutil.copytree(model, broken)
        if source == "model weights":
            weights = broken / "model.safetensors"
            weights.write_bytes(_cut(weights.read_bytes(), 0.5))
        elif kind == "type":
            config = json.loads((broken / "config.json").read_text())
            config[case] = UNET_CONFIG_WRONG_TYPES[case]
            (broken / "config.json").write_text(json.dumps(config))
        else:
            cut = {"0": 0, "1/3": 1 / 3, "2/3": 2 / 3, "-2": -2}[fault.split("@")[1]]  # -1: only the newline
            (broken / "config.json").write_bytes(_cut((broken / "config.json").read_bytes(), cut))
        run[2] = str(broken)
        result = invoke(run, env)
        assert result.exit_code == 2, result.output
        assert "error: " in result.output and _has_hint(result.output), result.output
        (record,) = ledger_records(out.parent / "offlinepack-runs.jsonl")
        assert record["exit_code"] == 2 and record["status"] == "error"
    elif source == "test.csv":
        content, code, words = CSV_CASES[fault]
        if fault == "type:utf16":
            (data / "test.csv").write_bytes(bytes.fromhex(content))
        else:
            (data / "test.csv").write_text(content)
        result = invoke(run, env)
        assert result.exit_code == code and words in result.output, result.output
        if not code:
            return
        assert _has_hint(result.output), result.output
    elif source == "TIFF volume":
        volume = data / "test_images" / "11.tif"
        if kind == "type":
            array, code = TIFF_WRONG_TYPES[case]
            tifffile.imwrite(volume, array, photometric="rgb" if array.ndim == 4 else "minisblack")
        else:
            volume.write_bytes(_cut(_tiff_bytes(tmp_path), TIFF_CUTS[fault]))
            code = 1
        result = invoke(run, env)
        assert result.exit_code == code, result.output
        if code:
            assert "error: volume 11 failed" in result.output and _has_hint(result.output), result.output
            (record,) = ledger_records(out.parent / "offlinepack-runs.jsonl")
            assert record["exit_code"] == code
        else:
            assert invoke(["validate", str(out), "--input", str(data)], env).exit_code == 0
            return
    elif source == "zip":
        candidate = tmp_path / "candidate.zip"
        if kind == "type":
            name, content = ZIP_WRONG_TYPES[case]
            with zipfile.ZipFile(candidate, "w") as archive:
                if isinstance(content, bytes):
                    archive.writestr(name, content)
                else:
                    tifffile.imwrite(tmp_path / "entry.tif", content, photometric="minisblack")
                    archive.write(tmp_path / "entry.tif", name)
        else:
            candidate.write_bytes(_cut(old, ZIP_CUTS[fault]))
        result = invoke(["validate", str(candidate), "--input", str(data)], env)
        assert result.exit_code == 1, result.output
        assert "problem: " in result.output and _has_hint(result.output), result.output
    assert out.read_bytes() == old  # the earlier submission is untouched whatever went wrong
    assert not list(out.parent.glob(".submission.zip.*.tmp"))


def test_the_matrix_is_complete() -> None:
    """Every (command target x fault class) and (input file x fault) pair has a case: 18 + 73."""
    assert len(OUTPUT_MATRIX) == len(OUTPUT_TARGETS) * len(OUTPUT_FAULTS) == 18
    sources = {s for s, _ in INPUT_MATRIX}
    assert sources == {"run.toml", "model config.json", "model weights", "test.csv", "TIFF volume", "zip"}
    assert len(INPUT_MATRIX) == len(set(INPUT_MATRIX))
