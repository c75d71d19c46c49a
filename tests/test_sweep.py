"""`slrbench sweep`: the grid planned like `run`, identical trainings grouped, a killed or
half-finished sweep continued, and a 2-worker Ray sweep storing what a sequential one stores."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from slrbench.store import RecordStore
from slrbench.sweep import SweepSettings
from slrbench.sweep.engines import Failure, ItemResult, SweepProgress, is_user_error, run_local
from slrbench.sweep.grid import plan_grid, work_items

DATASET = "synthsign-tiny"
# Two methods trained by epochs, two streams each, one short epoch: four trainings.
GRID = ["--methods", "slgcn,dsta", "--datasets", DATASET, "--epochs", "1", "--threads", "1",
        "--bootstrap", "0"]


def _records(root: Path) -> dict[tuple[str, ...], np.ndarray]:
    """identity (method, dataset, stream, seed, split, config hash) -> test/val scores."""
    store = RecordStore(root)
    found = {}
    for row in store.find():
        if str(row["stream"]).startswith("fused:"):
            continue
        key = tuple(str(row[k]) for k in ("method", "dataset", "stream", "seed", "split",
                                          "config_sha256"))
        assert key not in found, f"two records of {key}"
        found[key] = store.load(row["run_id"]).scores
    return found


def test_grid_groups_identical_trainings_and_skips_stored(tmp_path: Path) -> None:
    settings = SweepSettings(results=str(tmp_path), preset="tiny")
    cells = plan_grid(["slgcn", "lgf"], [DATASET], [0, 1], None, settings)
    assert len(cells) == 2 * (4 + 12)
    assert not any(cell.stored for cell in cells)
    items = work_items(cells)
    shared = [item for item in items if len(item.cells) > 1]
    # LGF-SLR's four body streams are SL-GCN's streams: trained once per seed.
    assert len(shared) == 2 * 4 and len(items) == 2 * (4 + 12) - 8
    assert {(c.method for c in item.cells).__next__() for item in shared} == {"slgcn"}
    assert {item.seed for item in shared} == {0, 1}
    assert [item.cost for item in items] == sorted((item.cost for item in items), reverse=True)


def test_errors_are_one_line(cli: Any, tmp_path: Path) -> None:
    results = ["--results", str(tmp_path)]
    for args, needle in [
        (["--methods", "nope", "--datasets", DATASET], "nope"),
        (["--methods", "slgcn", "--datasets", "nope"], "nope"),
        (["--methods", "slgcn", "--datasets", DATASET, "--seeds", "a"], "--seeds"),
        (["--methods", "slgcn", "--datasets", DATASET, "--engine", "slurm"], "--engine"),
        (["--methods", "slgcn", "--datasets", DATASET, "--workers", "2"], "--engine ray"),
        (["--methods", "slgcn,dsta", "--datasets", DATASET, "--set", "train.lr=1"], "--set"),
        (["--methods", "slgcn", "--datasets", DATASET, "--retries", "-1"], "--retries"),
    ]:
        code, _, err = cli("sweep", *args, *results)
        assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, (args, err)
        assert not (tmp_path / "runs").exists()


def test_without_ray_the_error_says_how_to_install(cli: Any, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    code, _, err = cli("sweep", "--methods", "slgcn", "--datasets", DATASET, "--engine", "ray",
                       "--results", str(tmp_path))
    assert code == 2
    assert "pip install 'slrbench[ray]'" in err and len(err.strip().splitlines()) == 1


def test_failed_items_are_retried_a_bounded_number_of_times(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import slrbench.sweep.engines as engines
    from slrbench.errors import SlrbenchError

    settings = SweepSettings(results=str(tmp_path), preset="tiny")
    items = work_items(plan_grid(["slgcn"], [DATASET], [0], ("j", "b"), settings))
    calls: list[str] = []

    def flaky(item: Any, _: SweepSettings) -> ItemResult:
        calls.append(item.label)
        if item.cells[0].unit == "j":
            raise RuntimeError("worker lost")
        raise SlrbenchError("bad input")  # never retried

    monkeypatch.setattr(engines, "train_item", flaky)
    failures: list[Failure] = []
    retried: list[int] = []
    progress = SweepProgress(lambda r: None, failures.append,
                             lambda label, attempt, error: retried.append(attempt))
    run_local(items, settings, 2, progress)
    by_unit = {f.label.split(" ")[0]: f for f in failures}
    assert by_unit["slgcn/j"].attempts == 3 and "worker lost" in by_unit["slgcn/j"].error
    assert by_unit["slgcn/b"].attempts == 1 and is_user_error(SlrbenchError("x"))
    assert retried == [1, 2] and len(calls) == 4


@pytest.mark.slow
def test_ray_sweep_stores_what_a_resumed_sequential_sweep_stores(cli: Any,
                                                                 tmp_path: Path) -> None:
    pytest.importorskip("ray")
    sequential, parallel = tmp_path / "sequential", tmp_path / "ray"
    reports = ["--out", str(tmp_path / "reports")]
    # Half the grid first, then the whole grid: the stored half is skipped, not retrained.
    code, out, err = cli("sweep", *GRID, "--streams", "j", "--no-fuse",
                         "--results", str(sequential))
    assert code == 0, err
    assert "2 to train" in out
    half = _records(sequential)
    code, out, err = cli("sweep", *GRID, "--streams", "j,b", "--results", str(sequential),
                         *reports)
    assert code == 0, err
    assert "4 training unit(s), 2 stored (skipped), 2 to train" in out
    whole = _records(sequential)
    for key, scores in half.items():
        np.testing.assert_array_equal(whole[key], scores)

    code, out, err = cli("sweep", *GRID, "--streams", "j,b", "--engine", "ray", "--workers",
                         "2", "--results", str(parallel), *reports)
    assert code == 0, err
    assert out.count("trained") >= 4
    by_ray = _records(parallel)
    assert set(by_ray) == set(whole) and len(whole) == 4 * 2
    for key, scores in whole.items():
        np.testing.assert_array_equal(by_ray[key], scores)  # 1 thread each: bit-identical
    # Fused per method and seed after the grid, then reported.
    fused = [r for r in RecordStore(parallel).find(split="test")
             if str(r["stream"]).startswith("fused:")]
    assert {r["method"] for r in fused} == {"slgcn", "dsta"}
    assert (tmp_path / "reports").is_dir()
    # Everything stored: a third run trains nothing.
    code, out, err = cli("sweep", *GRID, "--streams", "j,b", "--results", str(parallel),
                         "--no-fuse")
    assert code == 0 and "0 to train" in out, err


# Child process: the sweep CLI, dying like kill -9 (os._exit runs no cleanup, holds no lock
# release) when SL-GCN's bone stream starts its second epoch.
_SWEEP_KILLED_IN_EPOCH_1 = """
import os, sys
from slrbench.methods.slgcn_adapter import SLGCNAdapter
hook = SLGCNAdapter.on_epoch_start
def killed(self, model, epoch, config):
    if config["stream"] == "b" and epoch == 1:
        os._exit(137)
    hook(self, model, epoch, config)
SLGCNAdapter.on_epoch_start = killed
from slrbench.cli import main
sys.argv = ["slrbench", *sys.argv[1:]]
main()
"""


@pytest.mark.slow
def test_a_killed_sweep_continues_where_it_stopped(cli: Any, tmp_path: Path) -> None:
    """Killed in the second training: the same command again skips the stored first one and
    resumes the second from its last finished epoch (that a resumed training ends bit-identical
    to an uninterrupted one is test_runner's)."""
    grid = ["sweep", "--methods", "slgcn", "--datasets", DATASET, "--streams", "j,b",
            "--epochs", "2", "--threads", "1", "--bootstrap", "0", "--no-fuse",
            "--results", str(tmp_path)]
    child = subprocess.run([sys.executable, "-c", _SWEEP_KILLED_IN_EPOCH_1, *grid],
                           capture_output=True, text=True, timeout=600)
    assert child.returncode == 137, child.stderr[-2000:]
    assert {row["stream"] for row in RecordStore(tmp_path).find()} == {"j"}

    code, out, err = cli(*grid)
    assert code == 0, err
    assert "2 training unit(s), 1 stored (skipped), 1 to train" in out
    assert "slgcn/b resumed" in out
    store = RecordStore(tmp_path)
    for split in ("val", "test"):
        record = store.load(store.latest(stream="b", split=split)["run_id"])
        assert record.meta["timings"]["resumed_from_epoch"] == 1  # epoch 0 not trained again
    assert len(_records(tmp_path)) == 2 * 2
