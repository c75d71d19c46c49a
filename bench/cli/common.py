"""What every command shares: the consoles, the record-store option and list parsing.

Heavy modules (torch, pandas) are imported inside the commands so `slrbench --help` stays fast.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from slrbench.errors import MAX_RESAMPLES, SlrbenchError, check_range

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


def checked_location(given: Path | None, option: str, env: str, default: Path,
                     writable: bool) -> Path:
    """`given` (the option's value), else $`env`, else `default`: checked to be a usable
    folder, and named in any error by where it came from."""
    from slrbench.paths import check_directory

    origin = option if given else f"${env}" if env in os.environ else f"{option} (default)"
    return check_directory(given or default, origin, writable)


def open_store(results: Path | None, writable: bool = True) -> RecordStore:
    """The record store of --results (else $SLRBENCH_RESULTS, else ./results), checked to be a
    usable folder before any work starts."""
    from slrbench.paths import results_dir
    from slrbench.store import RecordStore

    store = RecordStore(checked_location(results, "--results", "SLRBENCH_RESULTS",
                                         results_dir(), writable))
    index = store.index_path
    if index.exists() and not index.is_file():
        raise SlrbenchError(f"{index}: not a file; expected the store's index (remove it: it is "
                            "rebuilt from runs/)")
    return store


def output_dir(out: Path | None) -> Path:
    """--out (else $SLRBENCH_REPORTS, else ./reports), checked to be a writable folder."""
    from slrbench.paths import reports_dir

    return checked_location(out, "--out", "SLRBENCH_REPORTS", reports_dir(), writable=True)


def check_cache() -> None:
    """SLRBENCH_CACHE (where SynthSign is generated) must be a writable folder."""
    from slrbench.paths import cache_dir

    checked_location(None, "the cache", "SLRBENCH_CACHE", cache_dir(), writable=True)


def split_list(value: str | None, option: str) -> list[str] | None:
    """`a, b,,c` -> ["a", "b", "c"]; not given -> None. Given but empty (`""`, `,`) is an
    error: it must not silently mean "all"."""
    if value is None:
        return None
    parts = [part.strip() for part in value.split(",") if part.strip()]
    if not parts:
        raise SlrbenchError(f"{option}: found {value!r}; expected a comma list of names")
    return parts


def bootstrap_config(resamples: int) -> BootstrapConfig | None:
    """--bootstrap N: N resamples with the fixed seed 0 that records store; 0 turns CIs off."""
    from slrbench.metrics import BootstrapConfig

    check_range("--bootstrap", resamples, 0, MAX_RESAMPLES)
    return BootstrapConfig(resamples=resamples, seed=0) if resamples else None
