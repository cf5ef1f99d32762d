"""Byte sizes as offlinepack prints them: powers of 1024, labelled KiB/MiB/GiB so the label is the unit."""

from __future__ import annotations

_UNITS = ("KiB", "MiB", "GiB", "TiB")


def format_size(size: int | float) -> str:
    """409_600_000 -> "390.6 MiB"; 512 -> "512 B"; one decimal from KiB up."""
    if size < 1024:
        return f"{size:.0f} B"
    value = float(size)
    for unit in _UNITS:
        value /= 1024
        if value < 1024 or unit == _UNITS[-1]:
            # 1023.96 MiB would print as "1024.0 MiB": say "1.0 GiB" instead
            if round(value, 1) >= 1024 and unit != _UNITS[-1]:
                continue
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")  # pragma: no cover
