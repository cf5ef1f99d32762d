"""`kernel-metadata.json` as the Kaggle CLI reads it (`kaggle kernels push -p DIR`), and the names Kaggle enforces.

Sources are written the way the notebook refers to them:
- a dataset: `owner/slug` (mounted at /kaggle/input/<slug>/ or /kaggle/input/datasets/<owner>/<slug>/);
- a Kaggle Model: `owner/model/framework/variation/version` (/kaggle/input/<model>/<framework>/<variation>/<version>/);
- a competition: its slug (/kaggle/input/<slug>/ or /kaggle/input/competitions/<slug>/).
`owner/slug:path/inside` names a folder or file inside a source (a model inside a pack of several).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from offlinepack.errors import raise_if_problems
from offlinepack.kaggle import OWNER, id_problems, slug_problems

KERNEL_METADATA = "kernel-metadata.json"
NOTEBOOK_NAME = "notebook.ipynb"
DEFAULT_COMPETITION = "vesuvius-challenge-surface-detection"
SOURCE_SLUG = (3, 50)  # an existing dataset's slug, as Kaggle's URLs allow
KERNEL_SLUG = (5, 50)  # `kaggle kernels push` refuses a slug under five characters
KERNEL_TITLE = (5, 50)


@dataclass(frozen=True, kw_only=True, slots=True)
class Source:
    """One attached input: kind "dataset" | "model" | "competition"; `ref` as kernel-metadata.json lists it."""

    kind: str
    ref: str
    inside: str = ""  # a path inside the source ("" for its root)

    @property
    def parts(self) -> list[str]:
        return self.ref.split("/")

    def mount_points(self) -> tuple[str, ...]:
        """Where Kaggle mounts it, relative to /kaggle/input, in the order the notebook tries them."""
        parts = self.parts
        if self.kind == "dataset":
            return (parts[1], f"datasets/{parts[0]}/{parts[1]}")
        if self.kind == "model":
            return ("/".join(parts[1:]), f"models/{self.ref}")
        return (self.ref, f"competitions/{self.ref}")


def slug_of_title(title: str) -> str:
    """The slug Kaggle derives from a kernel title."""
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def title_of_slug(slug: str) -> str:
    return " ".join(word.capitalize() for word in slug.split("-"))


def parse_source(text: str, kind: str, problems: list[str]) -> Source | None:
    """`owner/slug[:inside]` (dataset), `owner/model/framework/variation/version[:inside]` (model) or a
    competition slug; problems are appended, each naming the value and the rule."""
    ref, _, inside = text.partition(":")
    inside = inside.strip("/")
    parts = ref.split("/")
    if kind == "competition":
        found = slug_problems(ref, "competition", (3, 50))
        problems += found
        return None if found else Source(kind="competition", ref=ref)
    if len(parts) == 5 and kind == "model":
        owner, model, framework, variation, version = parts
        found = [] if OWNER.match(owner) else [f"model source {text!r}: owner {owner!r} must be a Kaggle user name"]
        found += slug_problems(model, f"model source {text!r}: model", SOURCE_SLUG)
        if not version.isdigit():
            found.append(f"model source {text!r}: version {version!r} must be a number "
                         "(owner/model/framework/variation/version)")
        if not framework or not variation:
            found.append(f"model source {text!r}: framework and variation must not be empty")
        problems += found
        return None if found else Source(kind="model", ref=ref, inside=inside)
    if len(parts) != 2 or not all(parts):
        shape = "owner/slug (a dataset) or owner/model/framework/variation/version (a Kaggle Model)" \
            if kind == "model" else "owner/slug"
        problems.append(f"{kind} source {text!r} must be {shape}")
        return None
    owner, slug = parts
    found = [] if OWNER.match(owner) else [f"{kind} source {text!r}: owner {owner!r} must be a Kaggle user name "
                                            "(letters, digits, - and _)"]
    found += slug_problems(slug, f"{kind} source {text!r}: dataset", SOURCE_SLUG)
    problems += found
    return None if found else Source(kind="dataset", ref=ref, inside=inside)


@dataclass(frozen=True, kw_only=True, slots=True)
class KernelMetadata:
    id: str
    title: str
    code_file: str
    enable_gpu: bool
    is_private: bool
    datasets: tuple[str, ...]
    competitions: tuple[str, ...]
    models: tuple[str, ...]
    kernels: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "title": self.title, "code_file": self.code_file, "language": "python",
            "kernel_type": "notebook", "is_private": self.is_private, "enable_gpu": self.enable_gpu,
            "enable_tpu": False, "enable_internet": False, "dataset_sources": list(self.datasets),
            "competition_sources": list(self.competitions), "kernel_sources": list(self.kernels),
            "model_sources": list(self.models),
        }

    def sources(self) -> list[Source]:
        return ([Source(kind="dataset", ref=r) for r in self.datasets] + [Source(kind="model", ref=r) for r in self.models]
                + [Source(kind="competition", ref=r) for r in self.competitions])


def kernel_metadata(*, kernel_id: str, title: str | None, sources: Iterable[Source], enable_gpu: bool = True,
                    is_private: bool = True, code_file: str = NOTEBOOK_NAME) -> KernelMetadata:
    """Validate the id and title (every problem at once) and list each source once, in order."""
    problems: list[str] = []
    problems += id_problems(kernel_id, "kernel", "owner/kernel-slug, e.g. alice/vesuvius-offlinepack", KERNEL_SLUG)
    slug = kernel_id.partition("/")[2]
    title = title if title is not None else title_of_slug(slug)
    if not KERNEL_TITLE[0] <= len(title) <= KERNEL_TITLE[1]:
        problems.append(f"kernel title {title!r} has {len(title)} characters; Kaggle needs {KERNEL_TITLE[0]} to "
                        f"{KERNEL_TITLE[1]}")
    elif slug and slug_of_title(title) != slug:
        problems.append(f"kernel title {title!r} becomes the slug {slug_of_title(title)!r} on Kaggle, not {slug!r} "
                        "from the id (a push would then create another kernel)")
    raise_if_problems(problems, "invalid kernel metadata",
                      hint="pass --id owner/kernel-slug (5-50 characters: a-z, 0-9, -) and a --title that Kaggle "
                           "turns into the same slug (or none: it is made from the slug)")
    by_kind: dict[str, list[str]] = {"dataset": [], "model": [], "competition": []}
    for source in sources:
        if source.ref not in by_kind[source.kind]:
            by_kind[source.kind].append(source.ref)
    return KernelMetadata(id=kernel_id, title=title, code_file=code_file, enable_gpu=enable_gpu,
                          is_private=is_private, datasets=tuple(by_kind["dataset"]),
                          competitions=tuple(by_kind["competition"]), models=tuple(by_kind["model"]))


def read_kernel_metadata(data: Any, where: str) -> KernelMetadata:
    """kernel-metadata.json's content back into a value; problems name the field."""
    problems: list[str] = []
    if not isinstance(data, dict):
        raise_if_problems([f"{where}: expected a JSON object"], f"{where} is not kernel metadata")
    for key in ("id", "code_file"):
        if not isinstance(data.get(key), str):
            problems.append(f"{where}: {key} must be a string")
    lists = {}
    for key in ("dataset_sources", "competition_sources", "model_sources", "kernel_sources"):
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            problems.append(f"{where}: {key} must be a list of strings")
            value = []
        lists[key] = tuple(value)
    if data.get("enable_internet") is not False:
        problems.append(f"{where}: enable_internet must be false (the competition's kernels run offline)")
    raise_if_problems(problems, f"{where} is not valid kernel metadata",
                      hint="write it with `offlinepack kernel init`")
    return KernelMetadata(id=data["id"], title=str(data.get("title", "")), code_file=data["code_file"],
                          enable_gpu=bool(data.get("enable_gpu")), is_private=bool(data.get("is_private", True)),
                          datasets=lists["dataset_sources"], competitions=lists["competition_sources"],
                          models=lists["model_sources"], kernels=lists["kernel_sources"])
