"""Which of a distribution's requirements apply in a kernel: parse each, evaluate its marker there."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from packaging.requirements import InvalidRequirement, Requirement


def applicable_requirements(texts: Iterable[str], markers: Mapping[str, str],
                            extras: Iterable[str] = ("",)) -> Iterator[Requirement]:
    """The requirements among `texts` whose marker holds in the marker environment `markers` for at least
    one of `extras` ("" is no extra). A line that does not parse is skipped: it is another project's
    metadata, and the resolver that installed it already accepted or ignored it."""
    extras = tuple(extras)
    for text in texts:
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            continue
        marker = requirement.marker
        if marker is None or any(marker.evaluate({**markers, "extra": extra}) for extra in extras):
            yield requirement
