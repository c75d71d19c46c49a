"""The runner's plan: streams train in parallel worker processes with explicit thread counts,
identical trainings happen once (their records are reused, with provenance), `--epochs` scales
the schedule, and progress is visible without a terminal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from slrbench.config import apply_overrides
from slrbench.datasets.synthsign import SynthSign, load_synthsign
from slrbench.errors import SlrbenchError
from slrbench.methods.base import MethodAdapter
from slrbench.methods.registry import get_method
from slrbench.store import RecordStore
from slrbench.training import Compute, RunRequest, run_all
from slrbench.training.compute import usable_cores
from slrbench.training.loop import TrainConfig, Trainer

ONE_EPOCH = {"train.epochs": 1}


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> SynthSign:
    """8 classes, 48 samples: a training epoch takes a fraction of a second."""
    return load_synthsign("tiny", seed=0, cache_dir=tmp_path_factory.mktemp("small"),
                          n_classes=8, n_train_signers=3, n_val_signers=1, n_test_signers=2,
                          repetitions=1)


def request(method: str, dataset: SynthSign, streams: tuple[str, ...]) -> RunRequest:
    return RunRequest(method=get_method(method), dataset=dataset, preset="tiny", streams=streams,
                      overrides=dict(ONE_EPOCH), bootstrap=None, progress=False)


def scores(store: RecordStore, run_id: str) -> np.ndarray:
    return store.load(run_id).scores


@pytest.mark.slow  # races two worker processes
def test_parallel_workers_give_the_records_of_a_sequential_run(small: SynthSign,
                                                               tmp_path: Path) -> None:
    streams = ("j", "b")
    sequential, parallel = RecordStore(tmp_path / "seq"), RecordStore(tmp_path / "par")
    (one,) = run_all([request("slgcn", small, streams)], sequential, jobs=1, threads=1)
    (two,) = run_all([request("slgcn", small, streams)], parallel, jobs=2, threads=1)
    for a, b in zip(one, two, strict=True):
        assert a.status == b.status == "trained"
        for split in ("val", "test"):
            # Same seed and thread count: bit-identical, whichever process trained it.
            np.testing.assert_array_equal(scores(sequential, a.run_ids[split]),
                                          scores(parallel, b.run_ids[split]))
    meta = parallel.load(two[0].run_ids["test"]).meta
    assert meta["compute"] == {"jobs": 2, "torch_threads": 1, "usable_cores": usable_cores()}
    assert sequential.load(one[0].run_ids["test"]).meta["compute"]["jobs"] == 1


def test_identical_trainings_run_once_and_are_reused(small: SynthSign, tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    slgcn, lgf = run_all([request("slgcn", small, ("j",)),
                          request("lgf", small, ("body_j", "lhand_j"))], store, jobs=1)
    assert [o.status for o in slgcn + lgf] == ["trained", "reused", "trained"]
    body = lgf[0]
    assert body.reused_from == slgcn[0].run_ids
    for split in ("val", "test"):
        reused, source = store.load(body.run_ids[split]), store.load(slgcn[0].run_ids[split])
        np.testing.assert_array_equal(reused.scores, source.scores)
        assert reused.meta["reused_from"] == source.run_id
        assert reused.meta["training_sha256"] == source.meta["training_sha256"]
        assert (reused.meta["method"], reused.meta["stream"]) == ("lgf", "body_j")
        assert reused.meta["reconstruction"] is True and source.meta["reconstruction"] is False
        assert reused.meta["checkpoint_sha256"] == source.meta["checkpoint_sha256"]
    # Later runs find the stored training too, and a second LGF run skips its own records.
    (again,) = run_all([request("lgf", small, ("body_j",))], RecordStore(tmp_path))
    assert again[0].status == "skipped"
    (other,) = run_all([request("lgf", small, ("body_b",))], store)
    assert other[0].status == "trained"  # no stored SL-GCN bone stream to reuse


def test_different_trainings_are_not_reused(small: SynthSign) -> None:
    slgcn, dsta = get_method("slgcn"), get_method("dsta")
    from slrbench.store.provenance import config_sha256

    def training(adapter: MethodAdapter, stream: str, overrides: dict[str, object]) -> str:
        config = adapter.resolve_config("tiny", small.spec, stream, overrides)
        return config_sha256(adapter.training_identity(config))

    base = training(slgcn, "j", {})
    assert base == training(get_method("lgf"), "body_j", {})
    assert base != training(slgcn, "b", {})
    assert base != training(slgcn, "j", {"train.lr": 0.05})
    assert base != training(dsta, "j", {})  # another model family


def test_epochs_override_scales_warmup_and_milestones() -> None:
    config = {"train": {"epochs": 250, "warmup_epochs": 20, "milestones": [150, 200]}}
    assert apply_overrides(config, {"train.epochs": 10})["train"] == {
        "epochs": 10, "warmup_epochs": 1, "milestones": [6, 8]}
    kept = apply_overrides(config, {"train.epochs": 10, "train.warmup_epochs": 5})
    assert kept["train"]["warmup_epochs"] == 5
    assert apply_overrides({"train": {"epochs": 30, "warmup_epochs": 2}},
                           {"train.epochs": 3})["train"]["warmup_epochs"] == 0


def test_compute_defaults_never_oversubscribe(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.setattr("slrbench.training.compute.usable_cores", lambda: 8)
    assert Compute.resolve(None, None, cpu, tasks=20) == Compute(jobs=8, threads=1)
    # Fewer streams than cores: fewer jobs, the same one thread each (same CPU results).
    assert Compute.resolve(None, None, cpu, tasks=2) == Compute(jobs=2, threads=1)
    assert Compute.resolve(None, None, cpu, tasks=1) == Compute(jobs=1, threads=1)
    assert Compute.resolve(None, 2, cpu, tasks=20) == Compute(jobs=4, threads=2)
    assert Compute.resolve(3, None, cpu, tasks=20) == Compute(jobs=3, threads=2)
    assert Compute.resolve(None, None, cuda, tasks=20) == Compute(jobs=1, threads=8)
    with pytest.raises(SlrbenchError, match="--jobs: found 0"):
        Compute.resolve(0, None, cpu, tasks=2)


def test_progress_lines_without_a_terminal(small: SynthSign, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    adapter = get_method("slgcn")
    config = adapter.resolve_config("tiny", small.spec, "j", {"train.epochs": 2})
    data = adapter.stream_data(small, config, seed=0)
    trainer = Trainer(TrainConfig.from_dict(config["train"]), torch.device("cpu"),
                      forward=lambda m, x, e: adapter.forward(m, x, e, config),
                      progress="lines", description="slgcn/j")
    trainer.fit(adapter.build_model(config, 8), data.train, data.val, tmp_path)
    lines = capsys.readouterr().out.splitlines()
    epochs = [line.split(" loss")[0] for line in lines]
    assert epochs == ["slgcn/j: epoch 1/2", "slgcn/j: epoch 2/2"]
    with pytest.raises(SlrbenchError, match="progress: found 'loud'"):
        Trainer(TrainConfig.from_dict(config["train"]), torch.device("cpu"), progress="loud")
