"""Provenance: hashes, code version and environment for run records.

Everything here is cheap and side-effect free; `git_info` and `environment` never raise (a
record without a commit is still a record, and the field says `None`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import enum
import hashlib
import json
import math
import os
import platform
import subprocess
import sys
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path, PurePath
from typing import Any

import numpy as np

from slrbench.errors import SlrbenchError

_PACKAGE_DIR = Path(__file__).resolve().parent


def to_jsonable(obj: Any, where: str = "value", _path: str = "") -> Any:
    """Plain JSON types from numpy scalars/arrays, Path, tuple/set, dataclass, Enum, datetime.

    Non-finite floats and unknown types raise `SlrbenchError` naming `where` and the key path,
    because neither has a faithful JSON form.
    """
    here = _path or "<root>"
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        if not math.isfinite(value):
            raise SlrbenchError(
                f"{where}: non-finite number {value} at {here}; expected a finite number or null"
            )
        return value
    if isinstance(obj, enum.Enum):
        return to_jsonable(obj.value, where, _path)
    if isinstance(obj, PurePath):
        return obj.as_posix()
    if isinstance(obj, (_dt.datetime, _dt.date)):
        return obj.isoformat()
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist(), where, _path)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        fields = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
        return to_jsonable(fields, where, _path)
    if isinstance(obj, Mapping):
        out: dict[str, Any] = {}
        for key, value in obj.items():
            skey = key if isinstance(key, str) else str(to_jsonable(key, where, _path))
            if skey in out:
                raise SlrbenchError(
                    f"{where}: keys {key!r} and {skey!r} collide at {here} once written as "
                    "JSON strings; expected distinct keys"
                )
            out[skey] = to_jsonable(value, where, f"{_path}.{skey}" if _path else skey)
        return out
    if isinstance(obj, (set, frozenset)):
        items = [to_jsonable(v, where, f"{_path}[]") for v in obj]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))  # order-free input
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v, where, f"{_path}[{i}]") for i, v in enumerate(obj)]
    raise SlrbenchError(
        f"{where}: value of type {type(obj).__name__} at {here}; expected JSON data "
        "(dict, list, str, number, bool, None, numpy, Path, dataclass)"
    )


def canonical_json(obj: Any) -> str:
    """One text per value: sorted keys, no whitespace, UTF-8, finite numbers only."""
    return json.dumps(
        to_jsonable(obj, "canonical_json"),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def config_sha256(config: Mapping[str, Any]) -> str:
    """SHA-256 of `canonical_json(config)`: equal configs hash equally whatever the key order."""
    return sha256_text(canonical_json(config))


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    path = Path(path)
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while block := f.read(chunk):
                h.update(block)
    except OSError as exc:
        raise SlrbenchError(
            f"{path}: cannot read ({exc.strerror}); expected a readable file"
        ) from exc
    return h.hexdigest()


def sha256_ids(ids: Iterable[Any]) -> str:
    """SHA-256 of the newline-joined ids (same as `datasets.base.sha256_lines`)."""
    return sha256_text("\n".join(str(i) for i in ids))


def utc_now() -> str:
    """ISO-8601 UTC with microseconds, e.g. 2025-01-31T12:00:00.123456+00:00 (sorts as text)."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")


def parse_utc(text: str | None) -> _dt.datetime | None:
    """Parse `utc_now()` output (also 'Z' suffixes and naive times, taken as UTC); None if bad."""
    if not isinstance(text, str) or not text:
        return None
    try:
        when = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=_dt.timezone.utc)


# --------------------------------------------------------------------------------------- git


def _git(args: list[str], cwd: Path) -> str | None:
    """stdout of a read-only git command, or None on any failure."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_OPTIONAL_LOCKS="0", GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    try:
        proc = subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return proc.stdout if proc.returncode == 0 else None


def git_info(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """{"git_commit": sha | None, "git_dirty": bool | None} for the repository holding `path`.

    Default `path`: slrbench's own source folder, counted only if its files are tracked there
    (an installed copy inside some other repository's ignored venv reports None, not that
    repository's commit). Dirty means any change `git status` shows: modified or staged tracked
    files, and untracked files that .gitignore does not cover (a new, uncommitted module is code
    that ran). Never raises; never uses the network.
    """
    none: dict[str, Any] = {"git_commit": None, "git_dirty": None}
    try:
        where = Path(path) if path is not None else _PACKAGE_DIR
        if where.is_file():
            where = where.parent
        if not where.is_dir():
            return none
        if _git(["rev-parse", "--show-toplevel"], where) is None:
            return none
        if path is None and _git(["ls-files", "--error-unmatch", "__init__.py"], where) is None:
            return none
        head = _git(["rev-parse", "--verify", "-q", "HEAD"], where)
        commit = head.strip() if head and head.strip() else None
        status = _git(["status", "--porcelain", "--untracked-files=normal"], where)
        dirty = None if status is None else bool(status.strip())
        return {"git_commit": commit, "git_dirty": dirty}
    except Exception:
        return none


# ------------------------------------------------------------------------------- environment


def _dist_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except Exception:
        return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if sys.platform == "darwin":
        try:
            out = subprocess.run(
                ["sysctl", "-n", "machdep.cpu.brand_string"],
                capture_output=True, text=True, timeout=5, stdin=subprocess.DEVNULL,
            )
            if out.returncode == 0 and out.stdout.strip():
                return out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _torch_device_info(device: str | None) -> dict[str, Any]:
    """Device, CUDA and cuDNN of the device used. torch is imported only if the caller already
    has it loaded or asked for an accelerator (importing it costs seconds)."""
    info: dict[str, Any] = {
        "device": device or "cpu", "device_name": None, "cuda": None, "cudnn": None,
        "torch_cuda_build": None,
    }
    wants_accel = bool(device) and not str(device).startswith("cpu")
    if "torch" not in sys.modules and not wants_accel:
        info["device_name"] = _cpu_model()
        return info
    try:
        import torch

        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        dev = torch.device(device)
        info["device"] = str(dev)
        info["torch_cuda_build"] = torch.version.cuda or getattr(torch.version, "hip", None)
        if dev.type == "cuda":
            count = torch.cuda.device_count() if torch.cuda.is_available() else 0
            index = dev.index if dev.index is not None else 0
            info["device_count"] = count
            if index < count:
                info["device_name"] = torch.cuda.get_device_name(index)
                info["cuda"] = torch.version.cuda or getattr(torch.version, "hip", None)
                info["cudnn"] = torch.backends.cudnn.version()
            else:  # asked for a GPU that is not there: say so rather than name the CPU
                info["device_name"] = "unavailable"
        elif dev.type == "mps":
            available = torch.backends.mps.is_available()
            info["device_name"] = f"Apple MPS ({_cpu_model()})" if available else "unavailable"
        elif dev.type == "cpu":
            info["device_name"] = _cpu_model()
            info["torch_threads"] = torch.get_num_threads()
        else:
            info["device_name"] = f"{dev.type} ({_cpu_model()})"
    except Exception:
        info["device_name"] = info["device_name"] or _cpu_model()
    return info


def environment(device: str | None = None) -> dict[str, Any]:
    """Python, OS, device and key library versions. `device` is the torch device the run used
    ("cpu", "cuda:0", ...); None means cuda:0 if torch is loaded and sees a GPU, else cpu.
    `cuda` / `cudnn` are None unless the device is a CUDA (or ROCm) GPU. Never raises."""
    env: dict[str, Any] = {}
    with contextlib.suppress(Exception):
        env.update(
            python=platform.python_version(),
            python_implementation=platform.python_implementation(),
            os=platform.system(),
            platform=platform.platform(),
            machine=platform.machine(),
            cpu_count=os.cpu_count(),
        )
    env.update(_torch_device_info(device))
    env["torch"] = _dist_version("torch")
    for dist in ("numpy", "pandas", "scipy", "scikit-learn", "optuna"):
        env[dist] = _dist_version(dist)
    try:
        from slrbench import __version__

        env["slrbench"] = __version__
    except Exception:
        env["slrbench"] = _dist_version("slrbench")
    return env
