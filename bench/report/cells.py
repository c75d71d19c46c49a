"""Table cells shared by every report table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from slrbench.report.seeds import Spread

PERCENT_METRICS = frozenset({"pi@1", "pi@5", "pc@1", "pc@5", "pc_union@1", "ece"})


def shown(value: object) -> str:
    """A cell for an identity field (preset, seed): imported records have neither."""
    return "–" if value is None else str(value)


def preset_label(meta: dict[str, Any]) -> str:
    """The preset, with every field the run changed from it: `tiny (train.epochs=2)`, so a
    shortened run never reads like a full one."""
    overrides = meta.get("overrides") or {}
    changed = ", ".join(f"{key}={value}" for key, value in sorted(overrides.items()))
    return shown(meta.get("preset")) + (f" ({changed})" if changed else "")


def metric_scale(key: str) -> tuple[float, int]:
    """(factor, decimals) a metric is shown with: accuracies and ECE in %, NLL as it is."""
    return (100.0, 2) if key in PERCENT_METRICS else (1.0, 3)


def spread_text(spread: Spread | None, key: str) -> str:
    """A metric over several seeds: `60.00 ± 10.00 (n=3)`; `–` when no seed has it."""
    if spread is None:
        return "–"
    scale, digits = metric_scale(key)
    mean = f"{spread.mean * scale:.{digits}f}"
    if spread.std is None:
        return f"{mean} (n={spread.n})"
    return f"{mean} ± {spread.std * scale:.{digits}f} (n={spread.n})"
