"""Stored numbers are checked, not trusted: a record that feeds a report or a fusion has its
headline metrics recomputed and its classes and ids compared with the registry
(docs/store.md#checked-on-load)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from test_fusion_fixtures import make_record, noisy_logits

from slrbench.datasets.registry import registry_facts
from slrbench.errors import SlrbenchError
from slrbench.metrics import evaluate
from slrbench.store import RecordStore, RunRecord
from slrbench.store.verify import headline_metrics

TINY = "synthsign-tiny"


def tiny_record(split: str = "test", stream: str = "j", n: int = 40, **fields) -> RunRecord:
    """A consistent synthsign-tiny record: registry ids and class list, true metrics."""
    from slrbench.datasets.synthsign import SynthSign, SynthSignConfig

    spec = SynthSign(SynthSignConfig.preset("tiny", seed=0)).spec
    ids = list(spec.splits[split][:n])
    labels = np.arange(n, dtype=np.int64) % spec.num_classes
    logits = noisy_logits(labels, 1.5, np.random.default_rng(0), k=spec.num_classes)
    metrics = evaluate(logits, labels, spec.num_classes, bootstrap=None).to_dict()["metrics"]
    return make_record(split, stream, ids, labels, logits, dataset=TINY,
                       vocab_sha256=spec.vocab_sha256, metrics=metrics, **fields)


def stored(tmp_path: Path, record: RunRecord) -> RecordStore:
    store = RecordStore(tmp_path / "results")
    store.add(record)
    return store


def edit_run_json(store: RecordStore, run_id: str, edit) -> None:
    path = store.runs / run_id / "run.json"
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta))


def test_headline_metrics_match_hand_computed_ties() -> None:
    # Row 0: true class tied with another -> pessimistic rank 2 (a miss at top-1).
    scores = np.array([[1, 1, 0], [0, 2, 1], [3, 0, 0], [0, 0, 1]], dtype=np.float32)
    labels = np.array([0, 1, 0, 2], dtype=np.int64)
    rec = make_record("test", "j", ["a", "b", "c", "d"], labels, scores, metrics={})
    got = headline_metrics(rec)
    assert got["pi@1"] == 0.75  # b, c, d
    assert got["pc@1"] == pytest.approx((0.5 + 1 + 1) / 3)  # class 0: one of two
    assert "pi@5" not in got  # K = 3 < 5
    full = evaluate(scores, labels, 3, bootstrap=None).metrics
    assert got["pi@1"] == full["pi@1"].value and got["pc@1"] == full["pc@1"].value


def test_consistent_record_loads(tmp_path: Path) -> None:
    record = tiny_record()
    store = stored(tmp_path, record)
    assert store.load_checked(record.run_id).run_id == record.run_id


@pytest.mark.parametrize(("edit", "needle"), [
    (lambda m: m["metrics"]["pi@1"].update(value=m["metrics"]["pi@1"]["value"] + 0.01),
     "stored metric pi@1 is"),
    (lambda m: m["metrics"]["pc@5"].update(value=1.0), "stored metric pc@5 is 1.000000 but"),
    (lambda m: m["metrics"]["pi@1"].update(value=None), "stored metric pi@1 is None"),
    (lambda m: m.update(vocab_sha256="0" * 64), "vocab_sha256 is 0000"),
])
def test_edited_numbers_are_refused(tmp_path: Path, edit, needle: str) -> None:
    record = tiny_record()
    store = stored(tmp_path, record)
    edit_run_json(store, record.run_id, edit)
    with pytest.raises(SlrbenchError, match=needle) as info:
        store.load_checked(record.run_id)
    assert "run.json" in str(info.value) and "\n" not in str(info.value)


def test_foreign_ids_and_class_counts_are_refused(tmp_path: Path) -> None:
    good = tiny_record()
    ids = good.sample_ids.copy()
    ids[0] = "nobody_00001"
    metrics = good.metrics
    foreign = make_record("test", "j", ids, good.labels, good.scores, dataset=TINY,
                          vocab_sha256=good.meta["vocab_sha256"], metrics=metrics)
    with pytest.raises(SlrbenchError, match=r"1 sample id\(s\) not in the official test split"):
        stored(tmp_path / "a", foreign).load_checked(foreign.run_id)
    # the val split's ids are not test ids
    val = tiny_record(split="val")
    relabelled = make_record("test", "j", val.sample_ids, val.labels, val.scores, dataset=TINY,
                             vocab_sha256=val.meta["vocab_sha256"], metrics=val.metrics)
    with pytest.raises(SlrbenchError, match="not in the official test split"):
        stored(tmp_path / "b", relabelled).load_checked(relabelled.run_id)
    eight = make_record("test", "j", good.sample_ids, good.labels % 8, good.scores[:, :8],
                        dataset=TINY, metrics={})
    with pytest.raises(SlrbenchError, match="num_classes is 8; expected 20"):
        stored(tmp_path / "c", eight).load_checked(eight.run_id)


def test_real_dataset_sizes_are_checked_without_shipped_ids(tmp_path: Path) -> None:
    facts = registry_facts("vsl")  # no id file shipped
    assert facts is not None and facts.split_ids is None and facts.num_classes == 50
    size = facts.split_sizes["test"]
    labels = np.arange(size + 1, dtype=np.int64) % 50
    logits = noisy_logits(labels, 2.0, np.random.default_rng(1), k=50)
    too_many = make_record("test", "j", [f"v{i:05d}" for i in range(size + 1)], labels, logits,
                           dataset="vsl", metrics={}, n_official=None)
    with pytest.raises(SlrbenchError, match=f"expected at most {size}, the official size"):
        stored(tmp_path, too_many).load_checked(too_many.run_id)


def test_report_and_fuse_refuse_an_edited_record(cli, tmp_path: Path) -> None:
    store = RecordStore(tmp_path / "results")
    for split in ("val", "test"):
        for stream in ("j", "b"):
            store.add(tiny_record(split, stream))
    victim = store.latest(split="test", stream="b")["run_id"]
    edit_run_json(store, victim, lambda m: m["metrics"]["pi@1"].update(value=0.999))
    args = ("--dataset", TINY, "--results", str(store.root))
    for command in (("report", *args, "--out", str(tmp_path / "rep")),
                    ("fuse", "--method", "slgcn", *args, "--strategy", "mean")):
        code, _, err = cli(*command)
        assert code == 2 and "Traceback" not in err, err
        assert f"{victim}/run.json: stored metric pi@1 is 0.999000" in err
    assert not (tmp_path / "rep").exists() or not any((tmp_path / "rep").rglob("*.md"))
    assert len(store.find(split="test")) == 2  # the refused fuse stored nothing


def test_non_finite_metric_never_breaks_the_index(tmp_path: Path) -> None:
    first, second = tiny_record(stream="j"), tiny_record(stream="b")
    store = stored(tmp_path, first)
    store.add(second)
    # json.dumps writes NaN / Infinity, and Python's json reads them back
    edit_run_json(store, first.run_id, lambda m: m["metrics"]["nll"].update(value=math.inf))
    store.index_path.unlink()  # force a rebuild from the run dirs
    with pytest.warns(UserWarning, match="could not be indexed"):
        rows = store.index()
    assert [r["run_id"] for r in rows] == [second.run_id]
    assert "metric 'nll' value is inf" in store.corrupt_runs()[first.run_id]
    json.loads(store.index_path.read_text().splitlines()[0])  # strict JSON still


def test_wlasl_records_are_checked_against_the_shipped_ids(tmp_path: Path) -> None:
    facts = registry_facts("wlasl100")
    assert facts is not None and facts.split_ids is not None and facts.vocab_sha256 is not None
    assert len(facts.split_ids["test"]) == facts.split_sizes["test"] == 258
    labels = np.arange(4, dtype=np.int64)
    foreign = make_record("test", "j", ["99999", "99998", "99997", "99996"], labels,
                          noisy_logits(labels, 2.0, np.random.default_rng(1), k=100),
                          dataset="wlasl100", metrics={}, n_official=None,
                          vocab_sha256=facts.vocab_sha256)
    with pytest.raises(SlrbenchError, match="4 sample id\\(s\\) not in the official test split"):
        stored(tmp_path, foreign).load_checked(foreign.run_id)
