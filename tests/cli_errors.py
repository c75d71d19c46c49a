"""The one shape every user-fixable error has on the command line: exit code 2 and a single
stderr line, no traceback. Imported by the CLI tests (tests/ is on sys.path)."""

from __future__ import annotations

from slrbench.errors import EXIT_BAD_INPUT


def one_line(code: int, err: str, *needles: str) -> str:
    """The error line, after checking the exit code, that it is alone and no traceback; each
    needle must occur in it."""
    assert code == EXIT_BAD_INPUT, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]
