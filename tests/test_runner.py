"""End to end: SL-GCN tiny trained on SynthSign-tiny through the shared runner."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from slrbench.datasets.registry import load_dataset
from slrbench.errors import SlrbenchError
from slrbench.methods.registry import get_method
from slrbench.metrics import BootstrapConfig, evaluate
from slrbench.report.tables import build_report
from slrbench.store import RecordStore
from slrbench.training.runner import RunRequest, run

# Every test here reads a full default-recipe training run (minutes on 2 cores).
pytestmark = pytest.mark.slow

DATASET = "synthsign-tiny"


def _request(**changes: object) -> RunRequest:
    values: dict[str, object] = {
        "method": get_method("slgcn"),
        "dataset": load_dataset(DATASET),
        "preset": "tiny",
        "streams": ("j",),
        "seed": 0,
        "device": torch.device("cpu"),
        "bootstrap": BootstrapConfig(resamples=200, seed=0),
        "progress": False,
    }
    values.update(changes)
    return RunRequest(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> RecordStore:
    """One full default-recipe run of the joint stream (about two minutes on 2 cores)."""
    store = RecordStore(tmp_path_factory.mktemp("store"))
    run(_request(), store, jobs=1, threads=1)  # one core per test worker (pytest -n 2)
    return store


def test_tiny_slgcn_learns_well_above_chance(trained: RecordStore) -> None:
    test = trained.load(trained.latest(split="test", stream="j")["run_id"])
    chance = 1 / test.meta["num_classes"]
    assert test.meta["metrics"]["pi@1"]["value"] >= 3 * chance
    # Far from solved: the benchmark must leave room between methods.
    assert test.meta["metrics"]["pi@1"]["value"] < 0.9


def test_records_are_complete_and_traceable(trained: RecordStore) -> None:
    dataset = load_dataset(DATASET)
    val_row = trained.latest(split="val", stream="j")
    test_row = trained.latest(split="test", stream="j")
    for row, split in ((val_row, "val"), (test_row, "test")):
        record = trained.load(row["run_id"])
        meta = record.meta
        assert list(record.sample_ids) == list(dataset.spec.splits[split])
        np.testing.assert_array_equal(record.labels, dataset.labels(split))
        assert record.scores.dtype == np.float32
        assert record.scores.shape == (len(record.labels), dataset.spec.num_classes)
        assert meta["selection_split"] == "val" and meta["test_tuned"] is False
        assert meta["dataset"] == DATASET and meta["split"] == split
        assert len(meta["config_sha256"]) == 64 and meta["config"]["data"]["stream"] == "j"
        assert 0 <= meta["selected_epoch"] < meta["config"]["train"]["epochs"]
        # Stored metrics are recomputable from the stored logits.
        again = evaluate(record.scores, record.labels, dataset.spec.num_classes)
        assert again.metrics["pi@1"].value == pytest.approx(meta["metrics"]["pi@1"]["value"])
        log = Path(row["path"], "log.jsonl").read_text().splitlines()
        assert len(log) == meta["config"]["train"]["epochs"]
        assert {"epoch", "train_loss", "val_pi@1", "lr"} <= set(json.loads(log[0]))
        checkpoint = Path(trained.root, "checkpoints", meta["checkpoint"])
        assert checkpoint.is_file()


def test_existing_records_are_skipped(trained: RecordStore) -> None:
    before = len(trained.index())
    outcomes = run(_request(), trained)
    assert [o.status for o in outcomes] == ["skipped"]
    assert len(trained.index()) == before


def test_report_tables_match_records(trained: RecordStore, tmp_path: Path) -> None:
    written = build_report(trained, DATASET, "test", tmp_path, ["md", "csv"])
    csv = next(p for p in written if p.suffix == ".csv")
    import pandas as pd

    table = pd.read_csv(csv)
    record = trained.load(trained.latest(split="test", stream="j")["run_id"])
    assert table.loc[0, "pi@1"] == pytest.approx(100 * record.meta["metrics"]["pi@1"]["value"])
    assert table.loc[0, "n_eval"] == 180
    markdown = next(p for p in written if p.suffix == ".md").read_text()
    assert "slgcn" in markdown and "chance: P-I@1 5.00 %" in markdown


class _Interrupt(Exception):
    pass


def test_interrupted_run_resumes_to_identical_logits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    short = {"train.epochs": 3}
    straight = RecordStore(tmp_path / "straight")
    run(_request(overrides=short), straight)

    broken = RecordStore(tmp_path / "broken")
    adapter = get_method("slgcn")
    original = adapter.on_epoch_start

    def stop_at_epoch_2(model: torch.nn.Module, epoch: int, config: dict) -> None:
        if epoch == 2:
            raise _Interrupt
        original(model, epoch, config)

    monkeypatch.setattr(adapter, "on_epoch_start", stop_at_epoch_2)
    with pytest.raises(_Interrupt):
        run(_request(method=adapter, overrides=short), broken)
    monkeypatch.undo()

    with pytest.raises(SlrbenchError, match="--resume"):
        run(_request(overrides=short), broken)
    outcomes = run(_request(overrides=short, resume=True), broken)
    assert outcomes[0].status == "resumed"

    for split in ("val", "test"):
        a = straight.load(straight.latest(split=split)["run_id"])
        b = broken.load(broken.latest(split=split)["run_id"])
        np.testing.assert_array_equal(a.scores, b.scores)
        assert b.meta["timings"]["resumed_from_epoch"] == 2
    # The resume state is gone once the records are stored; only the stream's lock file stays.
    left = [p.name for p in Path(broken.root, "work").iterdir()]
    assert left == [".slgcn-synthsign-tiny-j-s0-" + b.meta["config_sha256"][:12] + ".lock"]
