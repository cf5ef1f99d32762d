"""offlinepack.volumes: real TIFFs (LZW, deflate, raw) written by Pillow and tifffile, read back through every path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from offlinepack.errors import OfflinepackError
from offlinepack.volumes import VolumeReadError, find_inputs, read_volume, tiff_readers

REPO = Path(__file__).resolve().parent.parent


def volume(shape=(6, 20, 14), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def write_pillow_lzw(path: Path, array: np.ndarray) -> Path:
    pages = [Image.fromarray(page) for page in array]
    pages[0].save(path, save_all=True, append_images=pages[1:], compression="tiff_lzw")
    return path


@pytest.fixture
def lzw_files(tmp_path):
    array = volume()
    return array, write_pillow_lzw(tmp_path / "pillow_lzw.tif", array), _tifffile(tmp_path / "tf_lzw.tif", array, "lzw")


def _tifffile(path: Path, array: np.ndarray, compression: str | None) -> Path:
    tifffile.imwrite(path, array, compression=compression)
    return path


def test_lzw_reads_the_same_array_through_imagecodecs_and_pillow(lzw_files):
    array, by_pillow, by_tifffile = lzw_files
    for path in (by_pillow, by_tifffile):
        fast = read_volume(path)
        assert fast.reader == "tifffile+imagecodecs"
        slow = read_volume(path, prefer="pillow")
        assert slow.reader == "pillow"
        np.testing.assert_array_equal(fast.array, array)
        np.testing.assert_array_equal(slow.array, array)


def test_tifffile_alone_refuses_lzw_but_reads_deflate_and_raw(tmp_path, lzw_files):
    array, by_pillow, _ = lzw_files
    with pytest.raises(VolumeReadError, match="cannot read") as caught:
        read_volume(by_pillow, prefer="tifffile")
    assert "LZW" in " ".join(caught.value.problems)
    for compression in ("zlib", None):
        path = _tifffile(tmp_path / f"{compression}.tif", array, compression)
        data = read_volume(path, prefer="tifffile")
        assert data.reader == "tifffile"
        np.testing.assert_array_equal(data.array, array)


_PROBE = """
import json, sys
sys.modules['imagecodecs'] = None  # imagecodecs absent, as in a Kaggle kernel without it
from pathlib import Path
import numpy as np
from offlinepack.volumes import read_volume, tiff_readers
out = {"readers": tiff_readers().to_dict()}
for name in sys.argv[1:]:
    data = read_volume(Path(name))
    out[name] = {"reader": data.reader, "sum": int(data.array.astype(np.int64).sum()), "shape": list(data.array.shape)}
print(json.dumps(out))
"""


def _probe(python: str, files: list[Path], env: dict | None = None) -> dict:
    proc = subprocess.run([python, "-c", _PROBE, *map(str, files)], capture_output=True, text=True, env=env, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_without_imagecodecs_lzw_goes_to_pillow_and_deflate_to_tifffile(tmp_path, lzw_files):
    array, by_pillow, by_tifffile = lzw_files
    deflate = _tifffile(tmp_path / "deflate.tif", array, "zlib")
    out = _probe(sys.executable, [by_pillow, by_tifffile, deflate])
    assert out["readers"]["imagecodecs"] is False and out["readers"]["lzw"] == "pillow"
    assert out[str(by_pillow)]["reader"] == out[str(by_tifffile)]["reader"] == "pillow"
    assert out[str(deflate)]["reader"] == "tifffile"
    assert {v["sum"] for k, v in out.items() if k != "readers"} == {int(array.astype(np.int64).sum())}


def test_in_a_real_venv_without_imagecodecs(tmp_path, lzw_files):
    """A fresh venv holding only numpy, tifffile and Pillow (linked from the dev venv): imagecodecs is truly absent."""
    array, by_pillow, by_tifffile = lzw_files
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python3.*/site-packages"))
    dev_site = Path(np.__file__).parent.parent
    for name in ("numpy", "numpy.libs", "tifffile", "PIL", "pillow.libs"):
        if (dev_site / name).exists():
            (site / name).symlink_to(dev_site / name)
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    check = subprocess.run([str(venv / "bin" / "python"), "-c", "import imagecodecs"], capture_output=True, env=env)
    assert check.returncode != 0
    out = _probe(str(venv / "bin" / "python"), [by_pillow, by_tifffile], env=env)
    assert out["readers"]["lzw"] == "pillow"
    assert out[str(by_tifffile)] == {"reader": "pillow", "sum": int(array.astype(np.int64).sum()), "shape": list(array.shape)}


def test_tiff_readers_here():
    readers = tiff_readers()
    assert readers.tifffile and readers.imagecodecs and readers.pillow
    assert readers.lzw == "tifffile+imagecodecs"
    assert dict(readers.versions)["tifffile"] == tifffile.__version__


def test_bad_volumes_name_the_file(tmp_path, lzw_files):
    array, by_pillow, _ = lzw_files
    truncated = tmp_path / "truncated.tif"
    truncated.write_bytes(by_pillow.read_bytes()[: by_pillow.stat().st_size // 2])
    flat = _tifffile(tmp_path / "flat.tif", array[0], None)
    rgb = _tifffile(tmp_path / "rgb.tif", np.stack([array] * 3, axis=-1), None)
    garbage = tmp_path / "garbage.tif"
    garbage.write_bytes(b"not a tiff at all")
    for path, expected in ((truncated, "truncated.tif"), (flat, "2D page"), (rgb, "4D array"),
                           (garbage, "cannot read this TIFF"), (tmp_path / "absent.tif", "no such file")):
        with pytest.raises(VolumeReadError, match=expected) as caught:
            read_volume(path)
        assert str(path) in caught.value.message


def test_pillow_path_reports_a_single_page_as_2d(tmp_path):
    page = volume((1, 8, 8))[0]
    path = tmp_path / "single.tif"
    Image.fromarray(page).save(path, compression="tiff_lzw")
    with pytest.raises(VolumeReadError, match="2D page"):
        read_volume(path, prefer="pillow")


def _competition(folder: Path, ids: list[str], present: list[str]) -> Path:
    (folder / "test_images").mkdir(parents=True)
    (folder / "test.csv").write_text("id,scroll_id\n" + "".join(f"{i},1\n" for i in ids))
    for i in present:
        write_pillow_lzw(folder / "test_images" / f"{i}.tif", volume((2, 4, 4)))
    return folder


def test_find_inputs_competition_folder_uses_test_csv(tmp_path):
    root = _competition(tmp_path / "comp", ["3", "1", "2"], ["1", "3", "9"])
    found = find_inputs(root)
    assert [v.id for v in found.volumes] == ["3", "1"]
    assert found.missing_ids == ("2",) and found.source == "competition folder" and found.root == root
    assert found.volumes[0].path == root / "test_images" / "3.tif"


def test_find_inputs_plain_folder(tmp_path):
    write_pillow_lzw(tmp_path / "b.tif", volume((2, 4, 4)))
    write_pillow_lzw(tmp_path / "a.tiff", volume((2, 4, 4)))
    found = find_inputs(tmp_path)
    assert [v.id for v in found.volumes] == ["a", "b"] and found.source == "folder of .tif"


@pytest.mark.parametrize("layout", ["input/competitions/vesuvius", "input/vesuvius"])
def test_find_inputs_in_both_kaggle_layouts(tmp_path, layout):
    (tmp_path / "input" / "some-wheels").mkdir(parents=True)
    root = _competition(tmp_path / layout, ["7"], ["7"])
    found = find_inputs(kaggle_root=tmp_path)
    assert found.root == root and [v.id for v in found.volumes] == ["7"] and found.source == f"kaggle: {root}"


def test_find_inputs_errors_list_what_was_probed(tmp_path):
    with pytest.raises(OfflinepackError) as caught:
        find_inputs(kaggle_root=tmp_path)
    assert any(str(tmp_path / "input" / "competitions") in p for p in caught.value.problems)
    with pytest.raises(OfflinepackError, match="does not exist"):
        find_inputs(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(OfflinepackError, match="neither a test_images"):
        find_inputs(tmp_path / "empty")
    bad = tmp_path / "bad"
    (bad / "test_images").mkdir(parents=True)
    (bad / "test.csv").write_text("name\nx\n")
    with pytest.raises(OfflinepackError, match="no 'id' column"):
        find_inputs(bad)
