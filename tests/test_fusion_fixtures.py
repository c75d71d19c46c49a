"""Shared helpers for the fusion tests: valid val/test stream records with controllable logits.

Imported by the other tests/test_fusion*.py files (pytest puts tests/ on sys.path); the one
test below checks the helper itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from slrbench.store import RecordStore
from slrbench.store.provenance import sha256_ids, utc_now
from slrbench.store.records import RunRecord, derived_meta, meta_template, new_run_id

STREAMS = ("j", "b", "jm", "bm")
K = 8
# Not a registry dataset: the records' ids and classes are made up, and a registry dataset's
# records are checked against its real ids and class list when loaded.
DATASET = "toy8"


def labels_for(n: int, k: int = K, seed: int = 0) -> np.ndarray:
    """Every class present, then random labels."""
    rng = np.random.default_rng(seed)
    labels = np.r_[np.arange(min(n, k)), rng.integers(0, k, max(0, n - k))]
    return rng.permutation(labels)


def noisy_logits(labels: np.ndarray, strength: float, rng: np.random.Generator,
                 k: int = K) -> np.ndarray:
    """Gaussian logits with the true class raised by `strength`."""
    logits = rng.standard_normal((labels.size, k)).astype(np.float32)
    logits[np.arange(labels.size), labels] += strength
    return logits


def make_record(split: str, stream: str, ids: Sequence[str], labels: np.ndarray,
                logits: np.ndarray, method: str = "slgcn", dataset: str = DATASET,
                seed: int = 0, shuffle: int | None = None, **fields) -> RunRecord:
    """A valid stream record; `shuffle` permutes its rows (fusion must align by id)."""
    ids = np.asarray(ids)
    if shuffle is not None:
        order = np.random.default_rng(shuffle).permutation(ids.size)
        ids, labels, logits = ids[order], labels[order], logits[order]
    k = logits.shape[1]
    meta = meta_template(
        run_id=new_run_id({"method": method, "dataset": dataset, "split": split,
                           "stream": stream, "seed": seed}),
        method=method, adapter_version="1", preset="tiny", stream=stream, seed=seed,
        dataset=dataset, subset=dataset, split=split, split_version="1",
        split_sha256=sha256_ids(sorted(ids.tolist())), vocab_sha256="v" * 64, num_classes=k,
        n_official=ids.size, missing_ids=[], config={"stream": stream},
        config_sha256=f"{stream:c<64}"[:64], checkpoint=f"{stream}.pt",
        checkpoint_sha256=f"{stream:d<64}"[:64], selection_split="val",
        selection_metric="pi@1", metrics={}, started_at=utc_now(), finished_at=utc_now(),
        **derived_meta(ids, labels))
    meta.update(fields)
    return RunRecord(meta, ids, labels, logits)


def make_split(split: str, n: int, strengths: Sequence[float], streams: Sequence[str] = STREAMS,
               k: int = K, seed: int = 0,
               logits_fn: (Callable[[np.ndarray, int, np.random.Generator], np.ndarray]
                           | None) = None,
               **fields) -> list[RunRecord]:
    """One record per stream of one split, each in its own row order."""
    labels = labels_for(n, k, seed + (0 if split == "test" else 1000))
    ids = [f"{split[0]}{i:04d}" for i in range(n)]
    rng = np.random.default_rng(seed + (7 if split == "test" else 11))
    records = []
    for i, (stream, strength) in enumerate(zip(streams, strengths)):
        logits = (logits_fn(labels, i, rng) if logits_fn is not None
                  else noisy_logits(labels, strength, rng, k))
        records.append(make_record(split, stream, ids, labels, logits, seed=0,
                                   shuffle=i or None, **fields))
    return records


def make_pair(n_val: int = 80, n_test: int = 80,
              strengths: Sequence[float] = (1.6, 1.4, 1.0, 0.8),
              streams: Sequence[str] = STREAMS, k: int = K, seed: int = 0, with_val: bool = True,
              **fields) -> tuple[list[RunRecord] | None, list[RunRecord]]:
    val = make_split("val", n_val, strengths, streams, k, seed, **fields) if with_val else None
    return val, make_split("test", n_test, strengths, streams, k, seed, **fields)


def fill_store(store: RecordStore, val: Sequence[RunRecord] | None,
               test: Sequence[RunRecord]) -> None:
    for record in [*(val or []), *test]:
        store.add(record)


def test_helper_builds_valid_shuffled_records(tmp_path) -> None:
    val, test = make_pair()
    store = RecordStore(tmp_path)
    fill_store(store, val, test)
    assert len(store.index()) == 8
    assert test[0].sample_ids.tolist() != test[1].sample_ids.tolist()  # rows differ in order
    assert sorted(test[0].sample_ids) == sorted(test[1].sample_ids)
