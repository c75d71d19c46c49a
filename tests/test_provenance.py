"""Provenance helpers: canonical JSON and hashes, git state, environment, timestamps."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from slrbench.datasets.base import sha256_lines
from slrbench.errors import SlrbenchError
from slrbench.store import provenance as pv


@dataclasses.dataclass
class Opt:
    lr: float
    layers: tuple[int, ...]


def test_canonical_json_is_order_free_and_handles_types() -> None:
    a = {"b": 1, "a": {"y": [1, 2], "x": Path("data/x.npz")}, "o": Opt(0.1, (2, 3))}
    b = {"o": Opt(0.1, (2, 3)), "a": {"x": Path("data/x.npz"), "y": (1, 2)}, "b": np.int64(1)}
    text = pv.canonical_json(a)
    assert text == pv.canonical_json(b)
    assert text == ('{"a":{"x":"data/x.npz","y":[1,2]},"b":1,'
                    '"o":{"layers":[2,3],"lr":0.1}}')
    assert pv.canonical_json({"v": np.float32(0.5), "arr": np.arange(3), "s": {"b", "a"},
                              "ok": np.bool_(True), 3: None}) == (
        '{"3":null,"arr":[0,1,2],"ok":true,"s":["a","b"],"v":0.5}')
    assert pv.canonical_json({"é": "ü"}) == '{"é":"ü"}'


def test_canonical_json_refuses_nan_and_unknown_types() -> None:
    with pytest.raises(SlrbenchError, match=r"non-finite number nan at opt\.lr"):
        pv.canonical_json({"opt": {"lr": float("nan")}})
    with pytest.raises(SlrbenchError, match=r"type object at fn\[1\]"):
        pv.canonical_json({"fn": [1, object()]})
    with pytest.raises(SlrbenchError, match="collide"):
        pv.canonical_json({1: "a", "1": "b"})


def test_hashes(tmp_path: Path) -> None:
    cfg = {"model": {"channels": [64, 128]}, "lr": 0.1}
    assert pv.config_sha256(cfg) == pv.config_sha256({"lr": 0.1, "model": {"channels": (64, 128)}})
    assert pv.config_sha256(cfg) != pv.config_sha256({**cfg, "lr": 0.2})
    assert len(pv.config_sha256(cfg)) == 64

    f = tmp_path / "ckpt.pt"
    data = b"\x00weights" * 100_000
    f.write_bytes(data)
    assert pv.sha256_file(f) == hashlib.sha256(data).hexdigest()
    with pytest.raises(SlrbenchError, match=re.escape("nope.bin")):
        pv.sha256_file(tmp_path / "nope.bin")

    ids = ["00412", "00001", "x"]
    assert pv.sha256_ids(ids) == sha256_lines(ids) == pv.sha256_ids(np.array(ids))
    assert pv.sha256_ids(ids) == hashlib.sha256(b"00412\n00001\nx").hexdigest()


def test_utc_now() -> None:
    now = pv.utc_now()
    parsed = dt.datetime.fromisoformat(now)
    assert parsed.utcoffset() == dt.timedelta(0)
    assert abs((dt.datetime.now(dt.timezone.utc) - parsed).total_seconds()) < 5
    assert pv.parse_utc("2025-01-01T00:00:00Z") == dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
    assert pv.parse_utc("garbage") is None and pv.parse_utc(None) is None


# --------------------------------------------------------------------------------- git

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-c",
         "commit.gpgsign=false", *args],
        cwd=repo, check=True, capture_output=True, text=True,
    ).stdout.strip()


@needs_git
def test_git_info_in_a_repo(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    assert pv.git_info(repo) == {"git_commit": None, "git_dirty": False}  # no commit yet
    (repo / "a.py").write_text("x = 1\n")
    (repo / ".gitignore").write_text("results/\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "init")
    head = _git(repo, "rev-parse", "HEAD")

    assert pv.git_info(repo) == {"git_commit": head, "git_dirty": False}
    (repo / "results").mkdir()
    (repo / "results" / "r.json").write_text("{}")  # ignored output: still clean
    assert pv.git_info(repo / "a.py")["git_dirty"] is False
    (repo / "new.py").write_text("")  # untracked code counts
    assert pv.git_info(repo)["git_dirty"] is True
    (repo / "new.py").unlink()
    (repo / "a.py").write_text("x = 2\n")
    assert pv.git_info(repo) == {"git_commit": head, "git_dirty": True}


@needs_git
def test_git_info_outside_a_repo_never_raises(tmp_path: Path, monkeypatch) -> None:
    none = {"git_commit": None, "git_dirty": None}
    assert pv.git_info(tmp_path) == none
    assert pv.git_info(tmp_path / "does-not-exist") == none
    monkeypatch.setenv("PATH", str(tmp_path))  # no git binary at all
    assert pv.git_info(tmp_path) == none
    assert set(pv.git_info()) == {"git_commit", "git_dirty"}


# ------------------------------------------------------------------------- environment

ENV_KEYS = {"python", "python_implementation", "os", "platform", "machine", "cpu_count",
            "device", "device_name", "cuda", "cudnn", "torch", "numpy", "pandas", "scipy",
            "scikit-learn", "optuna", "slrbench"}


def test_environment_keys_on_cpu() -> None:
    env = pv.environment("cpu")
    assert set(env) >= ENV_KEYS
    assert env["device"] == "cpu" and env["cuda"] is None and env["cudnn"] is None
    assert isinstance(env["device_name"], str) and env["device_name"]
    assert env["numpy"] == np.__version__
    assert env["python"].count(".") == 2
    pv.canonical_json(env)  # storable in run.json as is


def test_environment_never_raises() -> None:
    for device in (None, "bogus:7", "cuda:99", "mps"):
        env = pv.environment(device)
        assert set(env) >= ENV_KEYS
