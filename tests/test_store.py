"""Record store: index, queries, frames, concurrency, crash safety, gc."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from slrbench.errors import SlrbenchError
from slrbench.store import RecordStore, records
from slrbench.store import record_store as store_mod
from slrbench.store.atomic import StagedDirectory
from slrbench.store.record_store import INDEX_FIELDS
from slrbench.store.records import RunRecord, derived_meta, meta_template, new_run_id

K = 5


def make_record(method: str = "slgcn", split: str = "test", stream: str = "j", seed: int = 0,
                finished_at: str = "2025-01-01T00:00:00+00:00", acc: float = 0.5,
                scores: np.ndarray | None = None, **meta_fields) -> RunRecord:
    ids = ["00412", "00007", "a1", "b2"]
    labels = np.array([0, 1, 2, 1])
    if scores is None:
        scores = np.random.default_rng(seed).standard_normal((4, K)).astype(np.float32)
    meta = meta_template(
        run_id=new_run_id({"method": method, "dataset": "synthsign", "split": split,
                           "stream": stream, "seed": seed}),
        method=method, dataset="synthsign", subset="synthsign", split=split, stream=stream,
        seed=seed, preset="tiny", num_classes=K, finished_at=finished_at,
        config_sha256="c" * 64, checkpoint_sha256="d" * 64,
        metrics={"pi@1": {"value": acc, "ci_low": acc - 0.1, "ci_high": acc + 0.1},
                 "pi@5": {"value": 1.0, "ci_low": 1.0, "ci_high": 1.0},
                 "chance@1": 0.2},
        **derived_meta(ids, labels),
    )
    meta.update(meta_fields)
    return RunRecord(meta, ids, labels, scores)


def index_lines(store: RecordStore) -> list[dict]:
    return [json.loads(line) for line in store.index_path.read_text().splitlines()]


def by_id(rows: list[dict]) -> dict[str, dict]:
    return {r["run_id"]: r for r in rows}


# -------------------------------------------------------------------------------- basics


def test_store_is_created_lazily(tmp_path: Path) -> None:
    store = RecordStore(tmp_path / "results")
    assert store.index() == [] and store.find(method="x") == [] and store.latest() is None
    assert store.frame().empty and list(store.frame().columns) == list(INDEX_FIELDS)
    assert not (tmp_path / "results").exists()


def test_add_index_find_load_latest(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    a = make_record(stream="j", finished_at="2025-01-01T00:00:00+00:00")
    b = make_record(stream="b", finished_at="2025-03-01T00:00:00+00:00", acc=0.7)
    c = make_record(stream="j", split="val", seed=1, finished_at="2025-02-01T00:00:00+00:00")
    for rec in (a, b, c):
        assert store.add(rec) == tmp_path / "runs" / rec.run_id

    rows = store.index()
    assert [r["run_id"] for r in rows] == [a.run_id, b.run_id, c.run_id]  # append order
    row = by_id(rows)[b.run_id]
    assert row["path"] == str(tmp_path / "runs" / b.run_id)
    assert set(INDEX_FIELDS) <= set(row)
    assert (row["pi@1"], row["pi@1_lo"], row["pi@1_hi"]) == pytest.approx((0.7, 0.6, 0.8))
    assert row["chance@1"] == 0.2 and "chance@1_lo" not in row

    assert {r["run_id"] for r in store.find(stream="j")} == {a.run_id, c.run_id}
    assert [r["run_id"] for r in store.find(stream="j", split="val")] == [c.run_id]
    assert {r["run_id"] for r in store.find(split=("val", "test"))} == {a.run_id, b.run_id,
                                                                         c.run_id}
    assert store.find(seed=False) == []  # seed 0 is not False
    with pytest.raises(SlrbenchError, match=r"unknown filter field.*colour"):
        store.find(colour="red")

    assert store.latest()["run_id"] == b.run_id
    assert store.latest(stream="j")["run_id"] == c.run_id
    assert store.latest(method="nope") is None

    back = store.load(a.run_id)
    assert back.meta == a.meta and back.scores.tobytes() == a.scores.tobytes()
    with pytest.raises(SlrbenchError, match="no such run"):
        store.load("slgcn-missing")
    with pytest.raises(SlrbenchError, match="not a valid run id"):
        store.load("../etc")


def test_frame_columns_and_filters(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    store.add(make_record(stream="j", acc=0.5))
    store.add(make_record(stream="b", acc=0.6))
    store.add(make_record(stream="b", acc=0.7, metrics={"pc@1": {"value": 0.1}}))
    df = store.frame()
    assert isinstance(df, pd.DataFrame) and len(df) == 3
    metric_cols = list(df.columns[len(INDEX_FIELDS):])
    assert list(df.columns[: len(INDEX_FIELDS)]) == list(INDEX_FIELDS)
    assert metric_cols == ["chance@1", "pc@1", "pc@1_lo", "pc@1_hi",
                           "pi@1", "pi@1_lo", "pi@1_hi", "pi@5", "pi@5_lo", "pi@5_hi"]
    b = store.frame(stream="b")
    assert len(b) == 2  # the record without pi@1 has NaN there, the other no pc@1
    assert b["pi@1"].dropna().tolist() == [0.6] and b["pc@1"].dropna().tolist() == [0.1]
    only = store.frame(stream="j")
    assert len(only) == 1 and only["pi@1"].iloc[0] == 0.5 and only["pi@1_hi"].iloc[0] == 0.6


def test_outputs_frame_uses_pessimistic_ties(tmp_path: Path) -> None:
    scores = np.array([[3, 1, 0, 0, 0],     # label 0: clear hit
                       [2, 2, 0, 0, 0],     # label 1: tie with class 0 -> rank 2, argmax 0
                       [0, 0, 0, 0, 0],     # label 2: constant -> rank 5
                       [0, 1, 5, 0, 0]],    # label 1: rank 2
                      dtype=np.float32)
    store = RecordStore(tmp_path)
    rec = make_record(scores=scores)
    store.add(rec)
    df = store.outputs_frame(rec.run_id)
    assert list(df.columns) == ["sample_id", "label", "pred", "score_true", "rank", "hit1"]
    assert df["sample_id"].tolist() == ["00412", "00007", "a1", "b2"]
    assert df["pred"].tolist() == [0, 0, 0, 2]
    assert df["rank"].tolist() == [1, 2, 5, 2]
    assert df["hit1"].tolist() == [True, False, False, False]
    assert df["score_true"].tolist() == [3.0, 2.0, 0.0, 1.0]


def test_side_files_and_fusion_rows(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text('{"epoch": 0, "loss": 1.0}\n')
    store = RecordStore(tmp_path / "s")
    a = make_record(stream="j")
    store.add(a, side_files={"log.jsonl": log})
    assert (tmp_path / "s" / "runs" / a.run_id / "log.jsonl").read_text() == log.read_text()
    fused = make_record(stream="fused", fusion={
        "inputs": [{"run_id": a.run_id, "ids_sha256": a.meta["ids_sha256"],
                    "checkpoint_sha256": "d" * 64}],
        "strategy": "mean", "weights": [1.0], "tuned_on": "val"})
    store.add(fused)
    assert store.find(fusion_strategy="mean")[0]["run_id"] == fused.run_id


# ----------------------------------------------------------------------- index upkeep


def test_index_rebuilt_when_missing_or_behind(tmp_path: Path) -> None:
    store = RecordStore(tmp_path / "s")
    recs = [make_record(seed=i) for i in range(3)]
    for rec in recs:
        store.add(rec)
    before = by_id(store.index())

    store.index_path.unlink()
    assert by_id(store.index()) == before and store.index_path.exists()

    # a record written behind the store's back (copied in from another store)
    other = RecordStore(tmp_path / "other")
    extra = make_record(seed=9)
    other.add(extra)
    shutil.copytree(other.runs / extra.run_id, store.runs / extra.run_id)
    rows = by_id(store.index())
    assert set(rows) == set(before) | {extra.run_id}
    assert len(index_lines(store)) == 4

    # a run dir removed by hand
    shutil.rmtree(store.runs / recs[0].run_id)
    assert set(by_id(store.index())) == set(before) - {recs[0].run_id} | {extra.run_id}

    # a damaged index line
    with open(store.index_path, "a") as f:
        f.write('{"run_id": "trunc')
    assert len(store.index()) == 3 and len(index_lines(store)) == 3


def test_corrupt_run_dir_is_reported_not_fatal(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    good = make_record(seed=1)
    bad = make_record(seed=2)
    store.add(good)
    store.add(bad)
    (store.runs / bad.run_id / "run.json").write_text("{not json")
    (store.runs / "stray-dir").mkdir()
    with pytest.warns(UserWarning, match="could not be indexed"):
        assert store.rebuild_index() == 1
    assert len(store.warnings) == 2
    assert any(str(store.runs / bad.run_id / "run.json") in w and "invalid JSON" in w
               for w in store.warnings)
    assert [r["run_id"] for r in store.index()] == [good.run_id]
    # no rebuild loop: the skipped list accounts for the corrupt dirs
    mtime = store.index_path.stat().st_mtime_ns
    store.index()
    assert store.index_path.stat().st_mtime_ns == mtime
    with pytest.raises(SlrbenchError, match="invalid JSON"):
        store.load(bad.run_id)


def test_rebuild_equals_appended_index(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    for i in range(4):
        store.add(make_record(seed=i, finished_at=f"2025-01-0{i + 1}T00:00:00+00:00"))
    appended = index_lines(store)
    assert store.rebuild_index() == 4
    assert index_lines(store) == appended  # same rows, same (finished_at) order


# ------------------------------------------------------------------------ concurrency


def _add_many(root: str, worker: int, count: int, barrier, out: str) -> None:
    store = RecordStore(root)
    recs = [make_record(method=f"m{worker}", seed=j) for j in range(count)]
    barrier.wait(60)  # start together to maximise contention
    for j, rec in enumerate(recs):
        store.add(rec)
        if j % 2 == 0:
            store.index()  # readers (and rebuild checks) interleave with writers
        if worker % 2 and j == count - 2:
            store.rebuild_index()  # a rebuild racing with appends must not duplicate rows
    Path(out).write_text(json.dumps([r.run_id for r in recs]))


@pytest.mark.slow  # 8 processes racing: seconds, so the full suite runs it, the fast loop not
def test_concurrent_writers(tmp_path: Path) -> None:
    workers, per_worker = 8, 4
    ctx = mp.get_context("spawn")
    root = tmp_path / "store"
    barrier = ctx.Barrier(workers)
    procs = [ctx.Process(target=_add_many,
                         args=(str(root), w, per_worker, barrier, str(tmp_path / f"w{w}.json")))
             for w in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * workers
    written = [rid for w in range(workers)
               for rid in json.loads((tmp_path / f"w{w}.json").read_text())]
    assert len(set(written)) == workers * per_worker
    store = RecordStore(root)
    lines = index_lines(store)
    assert sorted(r["run_id"] for r in lines) == sorted(written)  # each exactly once
    assert {e.name for e in os.scandir(store.runs)} == set(written)  # no temp left
    appended = by_id(lines)
    store.rebuild_index()
    assert by_id(index_lines(store)) == appended


# --------------------------------------------------------------------- crash safety


def test_crash_during_add_leaves_no_record_and_no_line(tmp_path: Path, monkeypatch) -> None:
    store = RecordStore(tmp_path)
    store.add(make_record(seed=1))

    def crash(*args, **kwargs):
        raise OSError("killed while writing outputs")

    monkeypatch.setattr(records, "write_npz", crash)
    rec = make_record(seed=2)
    with pytest.raises(OSError, match="killed"):
        store.add(rec)
    assert not (store.runs / rec.run_id).exists()
    assert [r["run_id"] for r in index_lines(store)] == [store.index()[0]["run_id"]]
    assert len(list(store.runs.iterdir())) == 1


def test_crash_at_commit_leaves_no_line(tmp_path: Path, monkeypatch) -> None:
    store = RecordStore(tmp_path)

    def crash(self):
        raise OSError("power cut before rename")

    monkeypatch.setattr(StagedDirectory, "commit", crash)
    with pytest.raises(OSError):
        store.add(make_record())
    monkeypatch.undo()
    assert store.index() == [] and list(store.runs.iterdir()) == []
    assert not store.index_path.exists() or index_lines(store) == []


def _die_mid_write(runs: str) -> None:
    staged = StagedDirectory(Path(runs) / "half-written")
    (staged.path / "run.json").write_text("{")
    os._exit(1)  # a real crash: no cleanup, no exception handling


@pytest.mark.slow  # kills a writer process
def test_killed_writer_leaves_only_a_temp_dir(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    rec = make_record()
    store.add(rec)
    proc = mp.get_context("spawn").Process(target=_die_mid_write, args=(str(store.runs),))
    proc.start()
    proc.join(60)
    leftovers = [p for p in store.runs.iterdir() if p.name.startswith(".tmp-")]
    assert len(leftovers) == 1 and not (store.runs / "half-written").exists()
    assert [r["run_id"] for r in store.index()] == [rec.run_id]  # readers ignore .tmp-*
    # a live writer's temp dir is kept; the dead one's is removed
    live = StagedDirectory(store.runs / "in-progress")
    removed = store.gc()
    assert removed == leftovers and live.path.exists()
    old = time.time() - 7200
    os.utime(live.path, (old, old))
    assert store.gc(max_age_s=3600) == [live.path]
    assert [p.name for p in store.runs.iterdir()] == [rec.run_id]


def test_duplicate_run_id_refused(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    rec = make_record()
    store.add(rec)
    with pytest.raises(SlrbenchError, match="already exists"):
        store.add(rec)
    assert len(index_lines(store)) == 1
    assert [p.name for p in store.runs.iterdir()] == [rec.run_id]


def test_module_exports() -> None:
    import slrbench.store

    assert store_mod.RecordStore is RecordStore
    assert slrbench.store.RunRecord is records.RunRecord
    assert set(slrbench.store.__all__) <= set(dir(slrbench.store))
