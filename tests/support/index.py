"""A PEP 503 simple index (with PEP 691-free HTML) served from a folder on 127.0.0.1."""

from __future__ import annotations

import hashlib
import html
import http.server
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from packaging.utils import canonicalize_name

_SDIST = re.compile(r"^(?P<name>.+?)-(?P<version>[^-]+)\.(tar\.gz|zip)$")


def project_of(filename: str) -> str:
    """The canonical project name of a wheel or sdist file name."""
    if filename.endswith(".whl"):
        return canonicalize_name(filename.split("-")[0])
    match = _SDIST.match(filename)
    if not match:
        raise ValueError(f"not a distribution file name: {filename}")
    return canonicalize_name(match["name"])


class _Handler(http.server.BaseHTTPRequestHandler):
    root: Path
    requests: list[str]

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self) -> None:  # noqa: N802
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802
        self.requests.append(self.path)
        path = self.path.split("?")[0].split("#")[0]
        files = sorted(p for p in self.root.iterdir() if p.is_file())
        if path in ("/simple", "/simple/"):
            names = sorted({project_of(p.name) for p in files})
            links = "".join(f'<a href="/simple/{n}/">{n}</a>\n' for n in names)
            return self._send(200, f"<!DOCTYPE html><html><body>\n{links}</body></html>".encode(), "text/html")
        match = re.fullmatch(r"/simple/([^/]+)/?", path)
        if match:
            project = canonicalize_name(match[1])
            mine = [p for p in files if project_of(p.name) == project]
            if not mine:
                return self._send(404, b"not found", "text/plain")
            links = "".join(
                f'<a href="/files/{html.escape(p.name)}#sha256={hashlib.sha256(p.read_bytes()).hexdigest()}">'
                f"{html.escape(p.name)}</a>\n"
                for p in mine
            )
            return self._send(200, f"<!DOCTYPE html><html><body>\n{links}</body></html>".encode(), "text/html")
        match = re.fullmatch(r"/files/([^/]+)", path)
        if match and (self.root / match[1]).is_file():
            return self._send(200, (self.root / match[1]).read_bytes(), "application/octet-stream")
        return self._send(404, b"not found", "text/plain")


class LocalIndex:
    """Files put in `root` are served at `url` (`.../simple/`); `requests` records every path asked for."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.requests: list[str] = []
        handler = type("Handler", (_Handler,), {"root": self.root, "requests": self.requests})
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/simple/"

    def start(self) -> "LocalIndex":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def serve(root: Path) -> Iterator[LocalIndex]:
    index = LocalIndex(root).start()
    try:
        yield index
    finally:
        index.stop()
