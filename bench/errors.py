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


# Upper limits of the numbers a user types: checked before anything is allocated, so a typo such
# as --trials 1000000000 is a one-line error instead of a 30 GB allocation.
MAX_SEED = 2**32 - 1  # numpy's and torch's common seed range
MAX_TRIALS = 100_000
MAX_RESAMPLES = 100_000
MAX_EPOCHS = 100_000
MAX_GRID_STEPS = 10_000  # per stream


def check_range(option: str, value: int, low: int, high: int) -> None:
    """Refuse ``value`` outside [low, high], naming the option."""
    expect(low <= value <= high,
           f"{option}: found {value}; expected an integer from {low:,} to {high:,}")


# Operating-system errors a user fixes by freeing space or choosing another place: errno name ->
# what was expected instead. Atomic writes guarantee nothing was half-written when they occur.
_FIXABLE_OS_ERRORS = {
    "ENOSPC": "free space on that file system (nothing was half-written: rerun the same "
              "command, with --resume for a run, once space is freed)",
    "EDQUOT": "disk quota left (nothing was half-written: rerun once space is freed)",
    "EROFS": "a writable file system (choose another folder with --results, --out or "
             "SLRBENCH_CACHE)",
    "EACCES": "a path you may read and write (choose another folder with --results, --out or "
              "SLRBENCH_CACHE)",
    "EPERM": "a path you may read and write",
    "ENOTDIR": "a directory there, not a file",
    "EISDIR": "a file there, not a directory",
    "ELOOP": "a path without symlink loops",
    "ENAMETOOLONG": "a shorter path",
}


def os_error_message(error: OSError) -> str | None:
    """One line for an `OSError` the user can fix (naming the file), else None."""
    import errno

    name = errno.errorcode.get(error.errno or -1)
    if name not in _FIXABLE_OS_ERRORS:
        return None
    where = error.filename if error.filename is not None else "a file slrbench was writing"
    return f"{where}: {error.strerror or name} ({name}); expected {_FIXABLE_OS_ERRORS[name]}"
