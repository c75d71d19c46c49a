"""Write one benchmark's section of docs/PERFORMANCE.md and leave the others as they are.

Each benchmark owns the text between ``<!-- BEGIN <name> -->`` and ``<!-- END <name> -->``;
a section not yet in the file is appended at its end. Also the machine facts every section
reports.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

from slrbench.errors import SlrbenchError
from slrbench.store.provenance import _cpu_model

PERFORMANCE_MD = Path(__file__).resolve().parents[1] / "docs" / "PERFORMANCE.md"
HEADER = "# Performance\n"


def markers(name: str) -> tuple[str, str]:
    return f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"


def write_section(name: str, body: str, path: Path = PERFORMANCE_MD) -> Path:
    """Put ``body`` between the markers of ``name`` in ``path`` (temp file, then rename)."""
    begin, end = markers(name)
    block = f"{begin}\n{body.strip()}\n{end}"
    text = path.read_text(encoding="utf-8") if path.exists() else HEADER
    start, stop = text.find(begin), text.find(end)
    if start < 0 and stop < 0:
        text = f"{text.rstrip()}\n\n{block}\n"
    elif 0 <= start < stop:
        text = text[:start] + block + text[stop + len(end):]
    else:
        raise SlrbenchError(
            f"{path}: markers of section '{name}' out of order or only one present; "
            f"expected '{begin}' before '{end}'"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def load_average() -> float:
    """The 1-minute load average."""
    return os.getloadavg()[0]


def machine() -> str:
    """CPU count and model, OS and Python, for a section's "Machine" line."""
    return (f"{os.cpu_count()} CPUs (`nproc`), {_cpu_model()}, {platform.platform()}, "
            f"Python {platform.python_version()}")


def publish(name: str, lines: list[str], write: bool = True) -> None:
    """Print a benchmark's section and, unless told not to, write it into docs/PERFORMANCE.md."""
    text = "\n".join(lines) + "\n"
    print(text)
    if write:
        print(f"wrote {write_section(name, text)}")
