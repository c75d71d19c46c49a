"""What every command shares: the consoles, the record-store option and list parsing.

Heavy modules (torch, pandas) are imported inside the commands so `slrbench --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from slrbench.errors import MAX_RESAMPLES, check_range

if TYPE_CHECKING:
    from slrbench.metrics import BootstrapConfig
    from slrbench.store import RecordStore

# No emoji codes: user text such as `--grid a:b:c` must print as typed, never as a symbol.
console = Console(emoji=False)
error_console = Console(stderr=True, emoji=False)

ResultsOption = Annotated[
    Path | None,
    typer.Option("--results", help="Record store (default ./results or $SLRBENCH_RESULTS)."),
]


def open_store(results: Path | None) -> RecordStore:
    from slrbench.paths import results_dir
    from slrbench.store import RecordStore

    return RecordStore(results or results_dir())


def split_list(value: str | None) -> list[str] | None:
    """`a, b,,c` -> ["a", "b", "c"]; nothing given -> None."""
    parts = [part.strip() for part in (value or "").split(",") if part.strip()]
    return parts or None


def bootstrap_config(resamples: int) -> BootstrapConfig | None:
    """--bootstrap N: N resamples with the fixed seed 0 that records store; 0 turns CIs off."""
    from slrbench.metrics import BootstrapConfig

    check_range("--bootstrap", resamples, 0, MAX_RESAMPLES)
    return BootstrapConfig(resamples=resamples, seed=0) if resamples else None
