"""Fault injection: kills at every commit point, a full disk at every write, corrupted stored
files of every kind, and property-based bad CLI values. Every case checks the error text, the
exit code and that the store's visible content is unchanged (docs/store.md#guarantees)."""

from __future__ import annotations

import builtins
import errno
import hashlib
import io
import json
import multiprocessing
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cli_errors import one_line
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fusion_fixtures import DATASET, fill_store, make_pair

from slrbench.store import RecordStore
from slrbench.store.atomic import is_temp_name

FUSE = ("fuse", "--method", "slgcn", "--dataset", DATASET)
REPORT = ("report", "--dataset", DATASET)


# ---------------------------------------------------------------------------------- helpers


def snapshot(root: Path) -> dict[str, str]:
    """Content hash of every committed file under runs/ and checkpoints/ (caches excluded)."""
    files: dict[str, str] = {}
    for top in ("runs", "checkpoints"):
        base = root / top
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            if path.is_file() and not path.is_symlink():
                files[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


def visible(root: Path) -> set[str]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {row["run_id"] for row in RecordStore(root).index()}


def leftovers(root: Path) -> list[str]:
    return [p.name for p in (root / "runs").iterdir() if is_temp_name(p.name)] \
        if (root / "runs").is_dir() else []


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    val, test = make_pair(n_val=40, n_test=40)
    fill_store(RecordStore(tmp_path / "results"), val, test)
    return tmp_path / "results"


# ------------------------------------------------------------------- kill at every commit point

_COMMIT_CALLS = ("rename", "replace", "fsync")


def _add_pair_killed_at(root: str, kill_at: int) -> None:
    """Child process: add a val/test pair, dying with os._exit at the kill_at-th rename,
    replace or fsync call (os._exit runs no cleanup: like kill -9)."""
    val, test = make_pair(n_val=12, n_test=12, streams=("j",), strengths=(1.0,))
    store = RecordStore(root)
    calls = {"n": 0}
    for name in _COMMIT_CALLS:
        real = getattr(os, name)

        def wrapped(*args: Any, _real: Callable[..., Any] = real, **kwargs: Any) -> Any:
            calls["n"] += 1
            if calls["n"] == kill_at:
                os._exit(137)
            return _real(*args, **kwargs)

        setattr(os, name, wrapped)
    assert val is not None
    store.add_group([(val[0], None), (test[0], None)])
    os._exit(0)


@pytest.mark.slow  # forks a process per commit point
def test_a_pair_appears_whole_or_not_at_all_when_killed_anywhere(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    outcomes = []
    for kill_at in range(1, 200):
        root = tmp_path / f"k{kill_at}"
        before = RecordStore(root)
        fill_store(before, *make_pair(n_val=12, n_test=12, streams=("b",), strengths=(1.0,)))
        shown = visible(root)
        child = context.Process(target=_add_pair_killed_at, args=(str(root), kill_at))
        child.start()
        child.join(60)
        added = visible(root) - shown
        assert len(added) in (0, 2), f"killed at call {kill_at}: {len(added)} of 2 visible"
        RecordStore(root).gc()
        assert not leftovers(root)
        assert len(list((root / "runs").iterdir())) == len(shown) + len(added)
        outcomes.append(len(added))
        if child.exitcode == 0:
            break
    else:
        pytest.fail("the pair never completed within 200 commit calls")
    assert outcomes[0] == 0 and outcomes[-1] == 2 and len(outcomes) > 10


# ------------------------------------------------------------------ concurrent identical runs


def _linear_request(**overrides: Any) -> Any:
    import torch

    from slrbench.datasets.registry import load_dataset
    from slrbench.methods.registry import get_method
    from slrbench.training.runner import RunRequest

    return RunRequest(method=get_method("linear"), dataset=load_dataset("synthsign-tiny"),
                      preset="tiny", streams=("pooled",), device=torch.device("cpu"),
                      overrides={"fit.c_grid": [1.0], **overrides}, bootstrap=None,
                      progress=False)


def _run_linear(root: str, statuses: Any) -> None:
    from slrbench.training.runner import run

    (outcome,) = run(_linear_request(), RecordStore(root))
    statuses.put(outcome.status)


@pytest.mark.slow  # two forked runs racing for one lock: the full suite runs it
def test_identical_runs_serialise_instead_of_sharing_a_work_directory(tmp_path: Path) -> None:
    from slrbench.training.runner import _identity_lock, _plan, _workdir

    root = tmp_path / "results"
    store = RecordStore(root)
    task = _plan(_linear_request(), "pooled")
    other = _plan(_linear_request(**{"fit.max_iter": 99}), "pooled")
    assert _workdir(store, task) != _workdir(store, other)  # other configs never share files
    lock = _identity_lock(store, task)
    context = multiprocessing.get_context("fork")
    statuses = context.Queue()
    children = [context.Process(target=_run_linear, args=(str(root), statuses))
                for _ in range(2)]
    with lock:  # both children plan, then wait here for the stream's lock
        for child in children:
            child.start()
        children[0].join(3)
        assert all(child.is_alive() for child in children) and not visible(root)
    for child in children:
        child.join(120)
        assert child.exitcode == 0
    assert sorted(statuses.get(timeout=5) for _ in children) == ["skipped", "trained"]
    rows = store.find()
    assert sorted(r["split"] for r in rows) == ["test", "val"]  # one pair, never two
    assert not leftovers(root) and not list((root / "checkpoints").glob(".tmp-*"))


# ---------------------------------------------------------------- a full disk at every write


@contextmanager
def full_disk_at(open_number: int) -> Iterator[dict[str, int]]:
    """The open_number-th file opened for writing raises ENOSPC at its first write."""
    real_open = builtins.open
    seen = {"n": 0}

    class Full:  # delegates everything but write()
        def __init__(self, inner: Any, name: str) -> None:
            self.inner, self.name_ = inner, name

        def write(self, *_: Any) -> int:
            raise OSError(errno.ENOSPC, "No space left on device", self.name_)

        def __getattr__(self, item: str) -> Any:
            return getattr(self.inner, item)

        def __enter__(self) -> Full:
            return self

        def __exit__(self, *exc: Any) -> None:
            self.inner.close()

    def patched(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        handle = real_open(file, mode, *args, **kwargs)
        if any(flag in mode for flag in "wax+") and not str(file).endswith(".lock"):
            seen["n"] += 1
            if seen["n"] == open_number:
                return Full(handle, str(file))
        return handle

    builtins.open, io.open = patched, patched  # pathlib writes through io.open
    try:
        yield seen
    finally:
        builtins.open, io.open = real_open, real_open


def test_a_full_disk_at_any_write_of_a_fusion_leaves_the_store_as_it_was(cli,
                                                                          store_dir: Path) -> None:
    shown, files = visible(store_dir), snapshot(store_dir)
    outcomes = []
    for open_number in range(1, 100):
        with full_disk_at(open_number) as seen:
            code, _, err = cli(*FUSE, "--strategy", "grid", "--grid", "0:1:3", "--ablate", "loo",
                               "--bootstrap", "0", "--results", str(store_dir))
        if code == 0:
            # The pair committed; only the index (a cache) may have failed, and it heals.
            assert len(visible(store_dir) - shown) == 2
            break
        one_line(code, err, "No space left on device (ENOSPC)", "nothing was half-written")
        assert visible(store_dir) == shown and snapshot(store_dir) == files, open_number
        assert not leftovers(store_dir)
        outcomes.append(open_number)
        assert seen["n"] >= open_number
    else:
        pytest.fail("the fusion never completed")
    assert len(outcomes) >= 3  # the arrays, run.json and side files of the pair all failed once


def test_a_full_disk_after_the_commit_is_not_reported_as_a_failure(store_dir: Path) -> None:
    store = RecordStore(store_dir)
    val, test = make_pair(n_val=12, n_test=12, streams=("x",), strengths=(1.0,), seed=3)
    assert val is not None
    real = store._append_index

    def failing(lines: str) -> None:
        with full_disk_at(1):
            real(lines)

    store._append_index = failing  # type: ignore[method-assign]
    with pytest.warns(UserWarning, match="not updated .*rebuilt from runs/"):
        paths = store.add_group([(val[0], None), (test[0], None)])
    assert all(p.is_dir() for p in paths)
    assert {val[0].run_id, test[0].run_id} <= visible(store_dir)  # the index healed


# -------------------------------------------------------------- corrupted stored files


def _first_run(root: Path) -> Path:
    """A test record: every command here reads it (report tabulates test, fuse scores it)."""
    return sorted(p for p in (root / "runs").iterdir()
                  if json.loads((p / "run.json").read_text())["split"] == "test")[0]


def _edit(run_dir: Path, **fields: Any) -> None:
    meta = json.loads((run_dir / "run.json").read_text())
    meta.update(fields)
    (run_dir / "run.json").write_text(json.dumps(meta))  # NaN is written as NaN


def _truncate(path: Path, keep: int = 50) -> None:
    path.write_bytes(path.read_bytes()[:keep])


CORRUPT_RECORDS: dict[str, tuple[Callable[[Path], None], str]] = {
    "truncated run.json": (lambda r: _truncate(r / "run.json"), "invalid JSON"),
    "run.json not an object": (lambda r: (r / "run.json").write_text("[1]"), "JSON object"),
    "run.json not UTF-8": (lambda r: (r / "run.json").write_bytes(b"\xff\xfe{"), "UTF-8"),
    "run.json missing": (lambda r: (r / "run.json").unlink(), "run.json: missing"),
    "NaN metric": (lambda r: _edit(r, metrics={"pi@1": {"value": float("nan")}}),
                   "is nan; expected a finite number"),
    "metric edited": (lambda r: _edit(r, metrics={"pi@1": {"value": 0.999}}),
                      "stored metric pi@1 is 0.999000 but"),
    "foreign class count": (lambda r: _edit(r, num_classes=9), "width 8; expected num_classes"),
    "truncated outputs.npz": (lambda r: _truncate(r / "outputs.npz", 300), "unreadable npz"),
    "outputs.npz missing": (lambda r: (r / "outputs.npz").unlink(), "outputs.npz: missing"),
    "outputs.npz with a pickle": (lambda r: np.savez(
        r / "outputs.npz", sample_ids=np.array([None], dtype=object)), "outputs.npz"),
    "symlink loop in runs/": (lambda r: os.symlink(r.parent / "loop", r.parent / "loop"),
                              "symlink loop"),
    "dangling symlink in runs/": (lambda r: os.symlink(r.parent / "gone", r.parent / "gone2"),
                                  "does not resolve"),
}


@pytest.mark.parametrize("case", sorted(CORRUPT_RECORDS))
@pytest.mark.parametrize("command", ["report", "fuse"])
def test_corrupt_record_stops_report_and_fuse_in_one_line(cli, store_dir: Path, tmp_path: Path,
                                                          case: str, command: str) -> None:
    corrupt, needle = CORRUPT_RECORDS[case]
    corrupt(_first_run(store_dir))
    files = snapshot(store_dir)
    args = (*REPORT, "--out", str(tmp_path / "rep")) if command == "report" else (
        *FUSE, "--strategy", "mean", "--bootstrap", "0")
    code, _, err = cli(*args, "--results", str(store_dir))
    one_line(code, err, needle)
    assert snapshot(store_dir) == files and not (tmp_path / "rep").exists()


CORRUPT_CACHES: dict[str, Callable[[Path], None]] = {
    "index.jsonl truncated": lambda root: _truncate(root / "index.jsonl", 30),
    "index.jsonl garbage": lambda root: (root / "index.jsonl").write_bytes(b"\x00\xff" * 40),
    "index.jsonl lists a missing run": lambda root: (root / "index.jsonl").write_text(
        (root / "index.jsonl").read_text() + json.dumps({"run_id": "ghost"}) + "\n"),
    "index.jsonl deleted": lambda root: (root / "index.jsonl").unlink(),
    "index.skipped.json garbage": lambda root: (root / "index.skipped.json").write_text("{"),
}


@pytest.mark.parametrize("case", sorted(CORRUPT_CACHES))
def test_damaged_caches_are_rebuilt_not_trusted(cli, store_dir: Path, tmp_path: Path,
                                                case: str) -> None:
    shown, files = visible(store_dir), snapshot(store_dir)
    CORRUPT_CACHES[case](store_dir)
    code, _, err = cli(*REPORT, "--out", str(tmp_path / "rep"), "--results", str(store_dir))
    assert code == 0, err
    assert visible(store_dir) == shown and snapshot(store_dir) == files


BAD_LOCATIONS: dict[str, tuple[Callable[[Path], dict[str, str]], tuple[str, ...], str]] = {
    "--results is a file": (lambda t: ((t / "f").write_text("x"), {"--results": str(t / "f")})[1],
                            FUSE, "is a file; expected a directory"),
    "--results under a file": (
        lambda t: ((t / "f").write_text("x"), {"--results": str(t / "f" / "r")})[1], FUSE,
        "lies under the file"),
    "--out is a file": (lambda t: ((t / "o").write_text("x"), {"--out": str(t / "o")})[1],
                        REPORT, "--out"),
    "index.jsonl is a directory": (lambda t: {}, REPORT, "index.jsonl: not a file"),
    "SLRBENCH_CACHE is a file": (lambda t: ((t / "c").write_text("x"), {"env": str(t / "c")})[1],
                                 ("report", "--dataset", "synthsign-tiny"), "$SLRBENCH_CACHE"),
    "--results is a symlink loop": (
        lambda t: (os.symlink(t / "L", t / "L"), {"--results": str(t / "L")})[1], FUSE,
        "symlink loop"),
}


@pytest.mark.parametrize("case", sorted(BAD_LOCATIONS))
def test_unusable_locations_are_one_line_errors(cli, store_dir: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                case: str) -> None:
    make, command, needle = BAD_LOCATIONS[case]
    options = make(tmp_path)
    if case == "index.jsonl is a directory":
        (store_dir / "index.jsonl").unlink()
        (store_dir / "index.jsonl").mkdir()
    if "env" in options:
        monkeypatch.setenv("SLRBENCH_CACHE", options.pop("env"))
    files = snapshot(store_dir)
    args = [*command, "--results", str(store_dir)]
    for option, value in options.items():
        args += [option, value]
    code, _, err = cli(*args)
    one_line(code, err, needle)
    assert snapshot(store_dir) == files


def test_read_only_store_is_refused_before_work(cli, store_dir: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # chmod alone does not stop root (CI may run as root): `os.access` is also told the truth
    # that chmod states, so the check runs, and can fail, under every user.
    real_access = os.access

    def access(path: object, mode: int, **kwargs: object) -> bool:
        if mode & os.W_OK and Path(str(path)).resolve() == store_dir.resolve():
            return False
        return real_access(path, mode, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "access", access)
    files = snapshot(store_dir)
    store_dir.chmod(0o555)
    try:
        code, _, err = cli(*FUSE, "--strategy", "mean", "--results", str(store_dir))
    finally:
        store_dir.chmod(0o755)
    one_line(code, err, "not writable")
    assert snapshot(store_dir) == files


# ------------------------------------------------------------- property-based CLI values

_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
_NUMBERS = st.one_of(st.integers(-(2**70), 2**70), st.floats(allow_nan=True)).map(str)
_VALUES = st.one_of(_TEXT, _NUMBERS, st.sampled_from(
    ["", ",", "-1", "0", "1e9", "nan", "inf", "0:1:3", "0:1:0", "a:b:c", "j=-1:1:3",
     "zz=0:1:2", "0:1e300:2", ":smile:", "[red]x[/red]", "2**64", "1,2"]))
_FUSE_OPTIONS = ("--trials", "--seed", "--crossfit", "--bootstrap", "--ci-rows", "--grid",
                 "--streams", "--ablate", "--space", "--level-search", "--input-seed")


@settings(deadline=None,  # examples: the profile in conftest.py
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(option=st.sampled_from(_FUSE_OPTIONS), value=_VALUES)
def test_any_fuse_value_is_accepted_or_one_line_error(cli, store_dir: Path, option: str,
                                                      value: str) -> None:
    files, shown = snapshot(store_dir), visible(store_dir)
    strategy = "hier" if option == "--level-search" else "grid"
    code, _, err = cli(*FUSE, "--strategy", strategy, "--bootstrap", "0", option, value,
                       "--results", str(store_dir)) if option != "--bootstrap" else cli(
        *FUSE, "--strategy", "mean", option, value, "--results", str(store_dir))
    assert "Traceback" not in err
    if code == 2:
        line = one_line(code, err)
        # the line names the option, or shows the value (literally or as a repr)
        assert option in line or value in line or repr(value) in line or "Invalid" in line, line
        assert snapshot(store_dir) == files
    else:
        assert code == 0, err
        added = visible(store_dir) - shown
        assert len(added) == 2  # a val and a test fused record, together
        # undo, so every example starts from the same store
        for run_id in added:
            shutil.rmtree(store_dir / "runs" / run_id)


_RUN_OPTIONS = ("--epochs", "--seed", "--jobs", "--threads", "--bootstrap", "--streams",
                "--preset", "--device", "--method")


class _Accepted(Exception):
    """Raised instead of training: the command line was valid."""


@settings(deadline=None,  # examples: the profile in conftest.py
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(option=st.sampled_from(_RUN_OPTIONS), value=_VALUES)
def test_any_run_value_is_accepted_or_one_line_error(cli, tmp_path: Path, option: str,
                                                     value: str) -> None:
    import slrbench.suite
    import slrbench.training

    def accept(*_: Any, **__: Any) -> Any:
        raise _Accepted

    originals = slrbench.training.run_all, slrbench.suite.run_suite
    slrbench.training.run_all = slrbench.suite.run_suite = accept  # type: ignore[assignment]
    try:
        args = ["run", "--dataset", "synthsign-tiny", "--results", str(tmp_path / "r")]
        if option != "--method":
            args += ["--method", "slgcn"]
        try:
            code, _, err = cli(*args, option, value)
        except _Accepted:
            return
    finally:
        slrbench.training.run_all, slrbench.suite.run_suite = originals  # type: ignore[assignment]
    assert "Traceback" not in err
    one_line(code, err)
    assert not (tmp_path / "r" / "runs").exists()


@pytest.mark.parametrize(("code", "needle"), [
    (errno.EROFS, "(EROFS); expected a writable file system"),
    (errno.EACCES, "(EACCES); expected a path you may read and write"),
    (errno.ENOTDIR, "(ENOTDIR); expected a directory there"),
    (errno.ELOOP, "(ELOOP); expected a path without symlink loops"),
])
def test_fixable_os_errors_become_one_line(cli, store_dir: Path, code: int, needle: str) -> None:
    """A read-only mount (or another fixable OS error) met mid-write: one line, store intact."""
    from slrbench.fusion import pipeline

    files = snapshot(store_dir)
    real = pipeline.RecordStore.add_group

    def refused(self: RecordStore, items: Any) -> Any:
        raise OSError(code, os.strerror(code), str(self.runs / "x"))

    pipeline.RecordStore.add_group = refused  # type: ignore[method-assign]
    try:
        exit_code, _, err = cli(*FUSE, "--strategy", "mean", "--bootstrap", "0",
                                "--results", str(store_dir))
    finally:
        pipeline.RecordStore.add_group = real  # type: ignore[method-assign]
    one_line(exit_code, err, needle, str(store_dir / "runs" / "x"))
    assert snapshot(store_dir) == files
