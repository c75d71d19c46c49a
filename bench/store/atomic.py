"""Atomic file and directory writing.

Everything slrbench writes either appears complete under its final name or not at all: data go
to a temporary name in the *same directory* (same filesystem, so the final `os.replace` /
`os.rename` is atomic), are fsynced, and only then renamed. Temporary names start with `.tmp-`
and carry the writer's host and process id, so readers skip them and `stale_temp_paths` can tell
a crashed writer's leftovers from a write still in progress.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import re
import secrets
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from slrbench.errors import SlrbenchError

TMP_PREFIX = ".tmp-"
# .tmp-<host hash>-<pid>-<random>-<final name>
_TMP_RE = re.compile(r"^\.tmp-([0-9a-f]{6})-(\d+)-([0-9a-f]+)-")


def _host_tag() -> str:
    # Hashed so that odd characters in host names never reach a file name.
    return hashlib.sha256(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:6]


def temp_name(final_name: str) -> str:
    """A temporary sibling name for `final_name` (unique, recognisable, <= ~120 chars)."""
    return f"{TMP_PREFIX}{_host_tag()}-{os.getpid()}-{secrets.token_hex(4)}-{final_name[:80]}"


def is_temp_name(name: str) -> bool:
    return name.startswith(TMP_PREFIX)


def fsync_dir(path: Path) -> None:
    """Persist a directory entry (a rename or a new file); a no-op where unsupported."""
    if os.name == "nt":  # Windows cannot open directories; NTFS renames are journaled.
        return
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems (e.g. certain network mounts) refuse fsync on directories
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """fsync every file and directory under `root` (callers may have written without fsync)."""
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            with open(os.path.join(dirpath, name), "rb") as f:  # fsync works on a read-only fd
                os.fsync(f.fileno())
        fsync_dir(Path(dirpath))


def atomic_write_with(path: str | os.PathLike[str], write: Callable[[BinaryIO], Any]) -> Path:
    """Stream into `path` atomically: `write(file)` fills a temp file in the same dir, then
    fsync + os.replace. Readers see the old file or the complete new one, never a torso."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / temp_name(path.name)
    try:
        with open(tmp, "xb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write `data` to `path` atomically (see `atomic_write_with`)."""
    return atomic_write_with(path, lambda f: f.write(data))


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    return atomic_write_bytes(path, text.encode(encoding))


def dumps_json(obj: Any, where: str = "JSON", indent: int | None = 2) -> str:
    """Strict JSON text (finite numbers only; numpy, Path, tuple and dataclasses converted)."""
    from slrbench.store.provenance import (
        to_jsonable,  # late import: provenance is heavier than this module
    )

    return json.dumps(to_jsonable(obj, where), indent=indent, ensure_ascii=False, allow_nan=False)


def atomic_write_json(path: str | os.PathLike[str], obj: Any, indent: int | None = 2) -> Path:
    """Write `obj` as strict JSON (NaN/inf are an error naming `path`) atomically."""
    return atomic_write_text(path, dumps_json(obj, str(path), indent) + "\n")


def check_npz_arrays(arrays: dict[str, Any], where: str) -> dict[str, np.ndarray]:
    """Arrays that `np.load(allow_pickle=False)` can read back: no object dtype."""
    out: dict[str, np.ndarray] = {}
    for name, value in arrays.items():
        arr = np.asarray(value)
        if arr.dtype.hasobject:
            raise SlrbenchError(
                f"{where}: array '{name}' has dtype object; expected a numeric, bool or "
                "unicode array (records are read with allow_pickle=False)"
            )
        out[name] = arr
    return out


def write_npz(f: io.BufferedIOBase, arrays: dict[str, np.ndarray]) -> None:
    """Uncompressed npz to an open file (a path would get '.npz' appended by numpy)."""
    named: dict[str, Any] = arrays  # numpy's stub checks **kwds against allow_pickle: bool too
    np.savez(f, **named)


def atomic_save_npz(path: str | os.PathLike[str], **arrays: Any) -> Path:
    """`np.savez` to `path` atomically; object arrays are refused (they would need pickle)."""
    path = Path(path)
    checked = check_npz_arrays(arrays, str(path))
    buf = io.BytesIO()
    write_npz(buf, checked)
    return atomic_write_bytes(path, buf.getvalue())


class StagedDirectory:
    """A temporary sibling of `final` that becomes `final` on `commit()`.

    Split from `atomic_directory` so a caller can hold a lock around the rename only (the
    record store renames and appends its index line under one lock, without holding the lock
    while large arrays are written).
    """

    def __init__(self, final: str | os.PathLike[str]) -> None:
        self.final = Path(final)
        if self.final.exists():
            raise SlrbenchError(f"{self.final}: already exists; expected a new name")
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self.path = self.final.parent / temp_name(self.final.name)
        self.path.mkdir()
        self.done = False

    def commit(self) -> Path:
        """fsync the contents, rename into place, fsync the parent."""
        fsync_tree(self.path)
        # os.rename silently replaces an *empty* existing directory on POSIX: check first.
        if self.final.exists():
            self.discard()
            raise SlrbenchError(f"{self.final}: already exists; expected a new name")
        try:
            os.rename(self.path, self.final)
        except OSError as exc:
            self.discard()
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                raise SlrbenchError(
                    f"{self.final}: already exists; expected a new name"
                ) from None
            raise
        fsync_dir(self.final.parent)
        self.done = True
        return self.final

    def discard(self) -> None:
        if not self.done:
            shutil.rmtree(self.path, ignore_errors=True)
            self.done = True


@contextmanager
def atomic_directory(final_path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temp dir beside `final_path`; rename it into place on success, remove on error.

    Raises `SlrbenchError` if `final_path` already exists (before or at commit time).
    """
    staged = StagedDirectory(final_path)
    try:
        yield staged.path
    except BaseException:
        staged.discard()
        raise
    staged.commit()


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if os.name != "posix":
        return True  # cannot tell cheaply: fall back to the age rule
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists but belongs to someone else
    return True


def stale_temp_paths(directory: Path, max_age_s: float) -> list[Path]:
    """`.tmp-*` entries in `directory` left by a dead writer on this host, or older than
    `max_age_s` (writers on other hosts, or names this module did not make)."""
    if not directory.is_dir():
        return []
    now = time.time()
    stale: list[Path] = []
    here = _host_tag()
    for entry in os.scandir(directory):
        if not is_temp_name(entry.name):
            continue
        m = _TMP_RE.match(entry.name)
        if m and m.group(1) == here and not _pid_alive(int(m.group(2))):
            stale.append(Path(entry.path))
            continue
        try:
            age = now - entry.stat(follow_symlinks=False).st_mtime
        except FileNotFoundError:
            continue  # finished or removed meanwhile
        if age > max_age_s:
            stale.append(Path(entry.path))
    return sorted(stale)


def remove_path(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
