"""Default locations. Each can be moved with an environment variable or a CLI option."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Generated and prepared datasets (`SLRBENCH_CACHE`, default ~/.cache/slrbench)."""
    env = os.environ.get("SLRBENCH_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "slrbench"


def results_dir() -> Path:
    """The record store (`SLRBENCH_RESULTS`, default ./results)."""
    return Path(os.environ.get("SLRBENCH_RESULTS", "results")).expanduser()


def reports_dir() -> Path:
    """Report output (`SLRBENCH_REPORTS`, default ./reports)."""
    return Path(os.environ.get("SLRBENCH_REPORTS", "reports")).expanduser()


def check_directory(path: Path, origin: str, writable: bool) -> Path:
    """Refuse, in one line naming `origin` (an option or environment variable), a location that
    cannot serve as the folder it names: a file in its place or above it, a symlink loop, or
    (when `writable`) a folder this process cannot write. A missing folder is fine: it is
    created on first write."""
    from slrbench.errors import SlrbenchError

    where = f"{origin} {path}"
    try:
        resolved = path.resolve(strict=False)
    except (RuntimeError, OSError):  # RuntimeError: a symlink loop on Python < 3.13
        raise SlrbenchError(f"{where}: a symlink loop; expected a directory") from None
    existing = resolved
    while not existing.exists():
        if existing.is_symlink():
            raise SlrbenchError(f"{where}: {existing} is a dangling symlink; expected a directory")
        existing = existing.parent
    if not existing.is_dir():
        found = "is a file" if existing == resolved else f"lies under the file {existing}"
        raise SlrbenchError(f"{where}: {found}; expected a directory")
    if writable and not os.access(existing, os.W_OK | os.X_OK):
        what = "is" if existing == resolved else f"would be created in {existing}, which is"
        raise SlrbenchError(f"{where}: {what} not writable; expected a folder you can write to "
                            f"(choose another with {origin})")
    return path
