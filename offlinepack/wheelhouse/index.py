"""Find a locked file on a package index by its name (portable locks: `path` = file name, no URL).

`offlinepack lock --portable` writes each file as a bare relative `path` plus its sha256 and sets
`[tool.offlinepack].files-from-index = true`, so a committed lock names no host. Here such a file is
looked up on the project's PEP 503 page of each index in turn; the download is hash-checked as usual.
Files already in the cache are never looked up, so a warm rebuild needs no index at all.
"""

from __future__ import annotations

import html.parser
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import unquote, urljoin, urlsplit

from packaging.utils import canonicalize_name

INDEX_ENV = ("OFFLINEPACK_INDEX_URL", "UV_INDEX_URL", "PIP_INDEX_URL")
EXTRA_INDEX_ENV = ("UV_EXTRA_INDEX_URL", "PIP_EXTRA_INDEX_URL")


# Asked in a child process: importing pip's internals here would break a later `import setuptools`
# in this process (pip's import disables setuptools' distutils shim), e.g. torch.compile's.
_ASK_PIP = """
from pip._internal.configuration import Configuration
from pip._internal.models.index import PyPI
configuration = Configuration(isolated=False)
configuration.load()
configured = [v for k, v in configuration.items() if k.split(".")[-1] == "index-url"]
print(configured[0] if configured else PyPI.simple_url)
"""


def _pip_default_index() -> str | None:
    """The index pip would use (its configuration, else its built-in default, so no host name is written
    here); None without pip."""
    try:
        done = subprocess.run([sys.executable, "-c", _ASK_PIP], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    url = done.stdout.strip()
    return url if done.returncode == 0 and url else None


def default_index_urls(environ: Mapping[str, str] = os.environ) -> tuple[str, ...]:
    """The index from the environment (offlinepack's, uv's, then pip's variable), else pip's default; then extras."""
    primary = next((environ[k] for k in INDEX_ENV if environ.get(k)), None) or _pip_default_index()
    extras = [url for k in EXTRA_INDEX_ENV for url in environ.get(k, "").split()]
    return tuple(dict.fromkeys(u for u in (primary, *extras) if u))


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.hrefs.append(href)


def project_files(page_url: str, text: str) -> dict[str, str]:
    """File name -> absolute download URL (fragment dropped) from a PEP 503 HTML project page."""
    parser = _Links()
    parser.feed(text)
    files: dict[str, str] = {}
    for href in parser.hrefs:
        url = urljoin(page_url, href).split("#")[0]
        files.setdefault(unquote(urlsplit(url).path.rsplit("/", 1)[-1]), url)
    return files


@dataclass(frozen=True, kw_only=True, slots=True)
class Located:
    urls: dict[str, str]  # file name -> URL
    problems: tuple[str, ...]


def _project_page(index: str, project: str, timeout: float) -> tuple[str, dict[str, str] | None, str | None]:
    import urllib.error
    import urllib.request

    page = f"{index.rstrip('/')}/{project}/"
    if urlsplit(index).scheme not in ("http", "https", "file"):
        return page, None, "not an http(s):// or file:// URL; pass --index-url https://HOST/simple/"
    request = urllib.request.Request(page, headers={"Accept": "text/html", "User-Agent": "offlinepack"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            text = response.read().decode("utf-8", "replace")
            return page, project_files(response.geturl(), text), None
    except urllib.error.HTTPError as error:
        return page, None, f"HTTP {error.code}"
    except (OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        return page, None, getattr(reason, "strerror", None) or str(reason)


def locate(wanted: Sequence[tuple[str, str]], index_urls: Sequence[str], *, jobs: int = 8,
           timeout: float = 60.0) -> Located:
    """URLs for `(project, file name)` pairs, first index that lists the file wins; every miss is a problem."""
    projects = sorted({canonicalize_name(p) for p, _ in wanted})
    pages: dict[tuple[str, str], tuple[str, dict[str, str] | None, str | None]] = {}
    if index_urls:
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = {(i, p): pool.submit(_project_page, i, p, timeout) for i in index_urls for p in projects}
            pages = {key: future.result() for key, future in futures.items()}
    urls: dict[str, str] = {}
    problems: list[str] = []
    for project, filename in wanted:
        tried = []
        for index in index_urls:
            page, files, error = pages[(index, canonicalize_name(project))]
            if files is not None and filename in files:
                urls[filename] = files[filename]
                break
            tried.append(f"{page} ({error})" if error else f"{page} (not listed)")
        else:
            where = "; ".join(tried) or "no package index is configured (pass --index-url)"
            problems.append(f"cannot find {filename} ({project}) on the package index: {where}")
    return Located(urls=urls, problems=tuple(problems))
