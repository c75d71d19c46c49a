"""Table cells shared by every report table."""

from __future__ import annotations

from typing import Any


def shown(value: object) -> str:
    """A cell for an identity field (preset, seed): imported records have neither."""
    return "–" if value is None else str(value)


def preset_label(meta: dict[str, Any]) -> str:
    """The preset, with every field the run changed from it: `tiny (train.epochs=2)`, so a
    shortened run never reads like a full one."""
    overrides = meta.get("overrides") or {}
    changed = ", ".join(f"{key}={value}" for key, value in sorted(overrides.items()))
    return shown(meta.get("preset")) + (f" ({changed})" if changed else "")
