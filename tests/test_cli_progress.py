"""Progress output: bars that fit an 80-column terminal, one plain line per file in a log."""

from __future__ import annotations

import io
import re

from rich.console import Console

from offlinepack.cli.progress import FileProgress, fit, volume_bar, volume_description
from offlinepack.wheelhouse import Progress as Event

LONG_WHEEL = "some_really_long_package_name-12.4.2-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"


def _screen_lines(text: str) -> list[str]:
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text.replace("\r", "\n"))
    return [line.rstrip() for line in plain.split("\n") if line.strip()]


def test_bars_fit_80_columns_and_an_sdist_build_shows_no_byte_count() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=80, color_system=None)
    with FileProgress(console, enabled=True) as progress:
        progress(Event(stage="download", filename="nibabel-5.4.2-py3-none-any.whl", done=1 << 20, total=3 << 20))
        progress(Event(stage="download", filename=LONG_WHEEL, done=0, total=70 << 20))
        progress(Event(stage="build", filename="acvl_utils-0.2.6.tar.gz", done=0, total=None))
        progress.progress.refresh()
    lines = _screen_lines(out.getvalue())
    assert lines and max(len(line) for line in lines) <= 80
    assert any(line.startswith("fetching nibabel-5.4.2-py3-none-any.whl") and "1.0/3.0 MiB" in line for line in lines)
    assert any(line.startswith("fetching some_really_long_package_name") and "…" in line for line in lines)
    build = [line for line in lines if line.startswith("building acvl_utils-0.2.6.tar.gz")]
    assert build and all("?" not in line and "bytes" not in line for line in build)


def test_off_a_terminal_each_file_is_one_line_when_done() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=80)
    with FileProgress(console, enabled=True) as progress:
        progress(Event(stage="download", filename="alpha-1.0-py3-none-any.whl", done=0, total=3 << 20))
        progress(Event(stage="download", filename="alpha-1.0-py3-none-any.whl", done=3 << 20, total=3 << 20,
                       finished=True))
        progress(Event(stage="build", filename="beta-2.0.tar.gz", done=0, total=None))
        progress(Event(stage="build", filename="beta-2.0.tar.gz", done=1, total=1, finished=True))
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("fetched alpha-1.0-py3-none-any.whl (3.0 MiB) in ")
    assert lines[1].startswith("built a wheel from beta-2.0.tar.gz in ")


def test_the_volume_bar_fits_80_columns() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=80, color_system=None)
    bar = volume_bar(console)
    bar.start()
    bar.add_task(volume_description("1407735-a-very-long-volume-identifier-from-the-scroll", 80), total=120,
                 completed=7, eta="ETA 1h02m")
    bar.refresh()
    bar.stop()
    lines = _screen_lines(out.getvalue())
    assert lines and max(len(line) for line in lines) <= 80
    assert all(line.startswith("volumes (last: 1407735") and "7/120" in line and "ETA 1h02m" in line
               for line in lines)


def test_fit() -> None:
    assert fit("short", 10) == "short" and fit("abcdefghijkl", 6) == "abcde…"
