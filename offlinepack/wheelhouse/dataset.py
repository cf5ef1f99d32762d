"""`dataset-metadata.json` for `kaggle datasets create -p DIR`: defaults, then Kaggle's rules checked."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from offlinepack.errors import raise_if_problems
from offlinepack.kaggle import id_problems

PLACEHOLDER_OWNER = "INSERT_KAGGLE_USERNAME"
DEFAULT_LICENSE = "CC0-1.0"
_LICENSE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+-]*$")  # one name: "GPL-2.0 MIT" is two
SLUG_MIN, SLUG_MAX = 6, 50  # what `kaggle datasets create` checks before uploading (as for the title)


@dataclass(frozen=True, kw_only=True, slots=True)
class DatasetMetadata:
    title: str
    id: str
    license: str
    placeholder: bool  # id owner is a placeholder: edit the file before uploading

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "id": self.id, "licenses": [{"name": self.license}]}


def slugify(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:50].strip("-")
    return slug if len(slug) >= SLUG_MIN else f"{slug or 'wheels'}-wheelhouse"[:SLUG_MAX].strip("-")


def dataset_metadata(*, dataset_id: str | None, title: str | None, license: str | None, default_slug: str,
                     target_name: str, environ: Mapping[str, str] = os.environ) -> DatasetMetadata:
    """Fill defaults (id from KAGGLE_USERNAME or a flagged placeholder), then validate all fields at once."""
    placeholder = False
    if dataset_id is None:
        owner = environ.get("KAGGLE_USERNAME", "").strip()
        if not owner:
            owner, placeholder = PLACEHOLDER_OWNER, True
        dataset_id = f"{owner}/{slugify(default_slug)}"
    if title is None:
        title = f"offlinepack wheels for {target_name}"
        if len(title) > 50:
            title = title[:50].rstrip()
        if len(title) < 6:
            title = f"{title} wheels"
    license = DEFAULT_LICENSE if license is None else license
    problems: list[str] = []
    if not 6 <= len(title) <= 50:
        problems.append(f"dataset title {title!r} has {len(title)} characters; Kaggle needs 6 to 50")
    problems += id_problems(dataset_id, "dataset", "owner/slug, e.g. alice/vesuvius-wheels", (SLUG_MIN, SLUG_MAX))
    if not license.strip():
        problems.append("dataset license is empty; Kaggle needs exactly one, e.g. CC0-1.0")
    elif not _LICENSE.match(license):
        problems.append(f"dataset license {license!r} is not one license name: Kaggle takes exactly one "
                        "(e.g. CC0-1.0, CC-BY-SA-4.0, GPL-2.0, ODbL-1.0, other)")
    raise_if_problems(problems, "invalid dataset metadata",
                      hint="pass --dataset-id owner/slug, --title TEXT (6-50 characters) and --license NAME")
    return DatasetMetadata(title=title, id=dataset_id, license=license, placeholder=placeholder)
