"""User-facing errors.

Anything a person can fix (bad file, unknown name, wrong shape) raises `SlrbenchError` with one
line naming the file or field, what was found and what was expected. The CLI prints that line
and exits with code 2; no traceback.
"""

from __future__ import annotations

EXIT_BAD_INPUT = 2


class SlrbenchError(Exception):
    """A problem with the user's input: printed as one line, exit code 2."""

    def __init__(self, message: str) -> None:
        # Keep it to one line whatever the caller passed.
        super().__init__(" ".join(str(message).split()))


def expect(condition: bool, message: str) -> None:
    """Raise `SlrbenchError(message)` unless `condition` holds."""
    if not condition:
        raise SlrbenchError(message)
