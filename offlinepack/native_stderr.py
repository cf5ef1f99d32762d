"""Keep libtiff's C-level messages off the user's terminal while Pillow decodes a TIFF.

Pillow's libtiff writes "TIFFFillStrip: Read error on strip 0 ..." straight to file descriptor 2 for a
damaged file, around our own clear error. `captured_native_stderr` points fd 2 at a temporary file for
the duration of a decode, hands libtiff's lines to the caller (to put in its error), and writes anything
else that arrived meanwhile (another thread's output) back to the real stderr.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator

_LOCK = threading.Lock()  # fd 2 is process-wide: one capture at a time
_LIBTIFF_LINE = re.compile(r"^(TIFF\w*|\w+(Decode|Encode|PreDecode|SetupDecode)|_TIFF\w*)[:(]")


@contextlib.contextmanager
def captured_native_stderr(libtiff_lines: list[str]) -> Iterator[None]:
    """Collect libtiff's stderr lines into `libtiff_lines` (filled when the block exits, also on an exception)."""
    with _LOCK:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError, AttributeError):  # no fd 2 to redirect: nothing to hide
            yield
            return
        sink = tempfile.TemporaryFile()
        try:
            os.dup2(sink.fileno(), 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text = sink.read().decode("utf-8", "replace")
            sink.close()
            others = []
            for line in text.splitlines():
                (libtiff_lines if _LIBTIFF_LINE.match(line) else others).append(line)
            if others:
                os.write(2, ("\n".join(others) + "\n").encode())
