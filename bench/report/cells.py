"""Table cells shared by every report table."""

from __future__ import annotations


def shown(value: object) -> str:
    """A cell for an identity field (preset, seed): imported records have neither."""
    return "–" if value is None else str(value)
