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
