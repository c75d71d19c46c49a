"""Several processes training one stream (`slrbench run --distributed`, docs/distributed.md):
the rank batches, the loss weights, synchronised BatchNorm and the Trainer in a 2-process gloo
group against one process, and a torchrun launch against the same single-process run."""

from __future__ import annotations

import copy
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.distributed as dist
from cli_errors import one_line
from torch import nn
from torch.utils.data import Dataset as TorchDataset

from slrbench.errors import SlrbenchError
from slrbench.training.distributed import (
    TORCHRUN_ENV,
    DistContext,
    global_batches,
    loss_weight,
    sync_batchnorm,
)
from slrbench.training.loop import TrainConfig, Trainer, TrainResult

CPU = torch.device("cpu")
# Config hash of `slgcn` tiny, stream j on synthsign-tiny before TrainConfig had sync_bn: an
# unset field must leave every stored record's hash as it was.
SLGCN_TINY_J_SHA256 = "6e34e95af0db25e1bbc14822bad67fd293c62c564d1e41cf30bc440b1bfb97dd"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _context(rank: int, world: int) -> DistContext:
    return DistContext(rank=rank, world_size=world, local_rank=rank, backend="gloo",
                       local_world_size=world)


# ------------------------------------------------------------------------------ batches


class _Indexed(TorchDataset):  # type: ignore[type-arg]
    """Sample i is (nothing, label i, id i): a loader's batches show its indices."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int]:
        return torch.zeros(1), index, index


def _batches(size: int, batch: int, epoch: int, context: DistContext | None) -> list[list[int]]:
    trainer = Trainer(TrainConfig(epochs=1, batch_size=batch, lr=0.1), CPU, seed=3,
                      epoch_offset=2, progress=False, distributed=context)
    loader = trainer._loader(_Indexed(size), train=True, epoch=epoch)
    batches = [targets.tolist() for _, targets, _ in loader]
    assert len(batches) == len(loader)
    return batches


def _reunite(per_rank: list[list[list[int]]]) -> list[list[int]]:
    """Rank r holds positions r::W of each global batch: put them back in place."""
    world = len(per_rank)
    merged = []
    for step in zip(*per_rank, strict=True):
        batch = [0] * sum(len(part) for part in step)
        for rank, part in enumerate(step):
            batch[rank::world] = part
        merged.append(batch)
    return merged


@pytest.mark.parametrize(("size", "batch", "world"), [(34, 8, 2), (35, 8, 3), (30, 6, 4)])
def test_rank_batches_reunite_to_the_single_process_batches(size: int, batch: int,
                                                            world: int) -> None:
    for epoch in (0, 1):
        single = _batches(size, batch, epoch, None)
        ranks = [_batches(size, batch, epoch, _context(r, world)) for r in range(world)]
        assert _reunite(ranks) == single
    assert _batches(size, batch, 0, None) != _batches(size, batch, 1, None)  # epochs reshuffle


def test_a_final_batch_smaller_than_the_ranks_joins_the_one_before() -> None:
    single = _batches(17, 8, 0, None)
    assert [len(b) for b in single] == [8, 8, 1]
    ranks = [_batches(17, 8, 0, _context(r, 2)) for r in range(2)]
    assert _reunite(ranks) == [single[0], single[1] + single[2]]
    assert [len(b) for b in global_batches(range(17), 8, 1)] == [8, 8, 1]  # one rank: as is
    with pytest.raises(SlrbenchError, match="1 training samples for 2 processes"):
        global_batches([0], 8, 2)


def test_loss_weights_average_to_the_global_mean_gradient_with_uneven_splits() -> None:
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    x, y = torch.randn(7, 4), torch.randint(0, 3, (7,))

    def grad(loss: torch.Tensor) -> torch.Tensor:
        model.zero_grad()
        loss.backward()
        assert model.weight.grad is not None
        return model.weight.grad.clone()

    full = grad(nn.functional.cross_entropy(model(x), y))
    for world in (2, 3):  # 7 samples: 4 + 3, and 3 + 2 + 2
        parts = [slice(r, None, world) for r in range(world)]
        weighted = [grad(nn.functional.cross_entropy(model(x[p]), y[p])
                         * loss_weight(len(y[p]), len(y), world)) for p in parts]
        plain = [grad(nn.functional.cross_entropy(model(x[p]), y[p])) for p in parts]
        assert torch.allclose(sum(weighted) / world, full, atol=1e-6)
        assert not torch.allclose(sum(plain) / world, full, atol=1e-4)  # why weights are needed


# ------------------------------------------------------------------- processes (gloo group)


def _in_group(rank: int, world: int, port: int, job: Callable[[int, int, Path], None],
              out: Path) -> None:
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        job(rank, world, out)
    finally:
        dist.destroy_process_group()


def _spawn(job: Callable[[int, int, Path], None], out: Path, world: int = 2) -> None:
    """`job(rank, world, out)` in `world` processes of one gloo group; an assertion failing in
    any of them fails the test."""
    torch.multiprocessing.spawn(_in_group, args=(world, _free_port(), job, out), nprocs=world,
                                join=True)


def _sync_bn_job(rank: int, world: int, out: Path) -> None:
    part = slice(0, 5) if rank == 0 else slice(5, 8)  # an uneven split of 8 samples
    for kind, shape, momentum in ((nn.BatchNorm1d, (8, 6, 5), 0.3),
                                  (nn.BatchNorm2d, (8, 4, 3, 5), None)):
        torch.manual_seed(0)  # the same batch and layer on every rank
        x, w = torch.randn(*shape) * 2 + 3, torch.randn(*shape)
        reference = kind(shape[1], momentum=momentum)
        nn.init.uniform_(reference.weight, 0.5, 1.5)
        nn.init.normal_(reference.bias)
        synced = sync_batchnorm(copy.deepcopy(reference), CPU)
        assert list(synced.state_dict()) == list(reference.state_dict())
        for _ in range(2):  # two steps: the running statistics' update rule
            whole, mine = x.clone().requires_grad_(), x[part].clone().requires_grad_()
            reference.zero_grad()
            synced.zero_grad()
            expected, out_synced = reference(whole), synced(mine)
            (expected * w).sum().backward()
            (out_synced * w[part]).sum().backward()
            for p in synced.parameters():  # the loss is a sum over the ranks' parts
                assert p.grad is not None
                dist.all_reduce(p.grad)
            assert torch.allclose(out_synced, expected[part], atol=1e-5)
            assert whole.grad is not None and mine.grad is not None
            assert torch.allclose(mine.grad, whole.grad[part], atol=1e-5)
            for ours, theirs in zip(synced.parameters(), reference.parameters()):
                assert ours.grad is not None and theirs.grad is not None
                assert torch.allclose(ours.grad, theirs.grad, atol=1e-4)
            for name, value in reference.state_dict().items():
                assert torch.allclose(synced.state_dict()[name].float(), value.float(),
                                      atol=1e-5), name
            x = x * 0.5 + 1  # the second step sees other statistics
        synced.eval()
        reference.eval()
        assert torch.allclose(synced(x[part]), reference(x[part]), atol=1e-6)
    (out / f"sync-bn-rank{rank}").touch()


@pytest.mark.slow
def test_synchronised_batchnorm_over_two_processes_is_one_batchnorm(tmp_path: Path) -> None:
    _spawn(_sync_bn_job, tmp_path)
    # Each rank leaves a mark once all its comparisons held.
    assert sorted(p.name for p in tmp_path.glob("sync-bn-rank*")) == ["sync-bn-rank0",
                                                                     "sync-bn-rank1"]


class _Points(TorchDataset):  # type: ignore[type-arg]
    def __init__(self, size: int, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.x = torch.randn(size, 6, generator=generator)
        self.y = (self.x[:, 0] > 0).long() + (self.x[:, 1] > 0.5).long()

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        return self.x[index], self.y[index], index


# SGD (not Adam, which hides a wrongly scaled gradient); 14 samples in batches of 5: every
# global batch splits unevenly over 2 ranks (3 + 2) or has fewer samples (4).
_POINTS_CONFIG = TrainConfig(epochs=2, batch_size=5, lr=0.2, schedule="constant",
                             eval_batch_size=4)


def _fit_points(workdir: Path, context: DistContext | None, epochs: int = 2,
                resume: bool = False) -> tuple[nn.Module, TrainResult]:
    torch.manual_seed(1)
    model: nn.Module = nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(),
                                     nn.Linear(16, 3))
    if context is not None:
        model = sync_batchnorm(model, CPU)
    trainer = Trainer(replace(_POINTS_CONFIG, epochs=epochs), CPU, seed=0, progress=False,
                      distributed=context)
    result = trainer.fit(model, _Points(14, 0), _Points(6, 1), workdir, resume=resume)
    model.load_state_dict(result.best_state)
    return model, result


def _trainer_job(rank: int, world: int, out: Path) -> None:
    context = _context(rank, world)
    model, result = _fit_points(out / "full", context)
    _fit_points(out / "interrupted", context, epochs=1)
    resumed, again = _fit_points(out / "interrupted", context, resume=True)
    torch.save({"full": model.state_dict(), "resumed": resumed.state_dict(),
                "history": result.history, "resumed_from": again.resumed_from},
               out / f"rank{rank}.pt")


@pytest.mark.slow
def test_two_process_trainer_trains_as_one_process_and_resumes(tmp_path: Path) -> None:
    _spawn(_trainer_job, tmp_path)
    model, single = _fit_points(tmp_path / "single", None)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    for name, value in model.state_dict().items():
        assert torch.allclose(ranks[0]["full"][name].float(), value.float(), atol=1e-5), name
        for rank in ranks:  # one model everywhere, resumed or not
            assert torch.equal(rank["full"][name], ranks[0]["full"][name]), name
            assert torch.equal(rank["resumed"][name], ranks[0]["full"][name]), name
    for ours, theirs in zip(ranks[0]["history"], single.history, strict=True):
        for key in ("train_loss", "train_acc", "val_loss", "val_pi@1"):
            assert ours[key] == pytest.approx(theirs[key], abs=1e-5), key
    assert [rank["resumed_from"] for rank in ranks] == [1, 1]
    # rank 0 alone wrote the work folder
    assert sorted(p.name for p in (tmp_path / "full").iterdir()) == ["best.pt", "checkpoint.pt",
                                                                      "log.jsonl"]


# ------------------------------------------------------------------------- configs and CLI


@pytest.mark.slow  # resolves every preset of every method (about 5 s)
def test_sync_bn_leaves_the_config_hashes_of_existing_presets_alone() -> None:
    from slrbench.datasets.registry import load_dataset
    from slrbench.methods.registry import get_method
    from slrbench.training.runner import RunRequest, _plan

    def plan(method: str, preset: str, unit: str,
             **overrides: object) -> tuple[str, dict[str, Any]]:
        request = RunRequest(method=get_method(method), dataset=load_dataset("synthsign-tiny"),
                             preset=preset, streams=(unit,), overrides=dict(overrides))
        task = _plan(request, unit)
        return task.config_hash, task.config["train"]

    digest, train = plan("slgcn", "tiny", "j")
    assert digest == SLGCN_TINY_J_SHA256 and "sync_bn" not in train
    assert plan("slgcn", "tiny", "j", **{"train.sync_bn": False})[0] == SLGCN_TINY_J_SHA256
    digest, train = plan("slgcn", "tiny", "j", **{"train.sync_bn": True})
    assert digest != SLGCN_TINY_J_SHA256 and train["sync_bn"] is True
    with pytest.raises(SlrbenchError, match=r"train\.sync_bn.*true or false"):
        plan("slgcn", "tiny", "j", **{"train.sync_bn": 1})
    assert plan("nla", "paper", "vknet")[1]["sync_bn"] is True  # upstream's SyncBatchNorm
    assert plan("nla", "paper", "vknet", **{"train.sync_bn": False})[1]["sync_bn"] is False
    assert TrainConfig.from_dict(train).to_dict() == train  # kept when set
    assert "sync_bn" not in TrainConfig(epochs=1, batch_size=1, lr=0.1).to_dict()


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        ([], ["--distributed", "RANK", "WORLD_SIZE", "torchrun --nproc_per_node"]),
        (["--jobs", "2"], ["--distributed", "--jobs 2"]),
        (["--method", "slgcn,dsta"], ["--distributed", "several methods"]),
    ],
)
def test_distributed_outside_torchrun_is_a_one_line_error(
        cli: Callable[..., tuple[int, str, str]], monkeypatch: pytest.MonkeyPatch,
        args: list[str], needles: list[str]) -> None:
    for name in TORCHRUN_ENV:
        monkeypatch.delenv(name, raising=False)
    method = [] if "--method" in args else ["--method", "slgcn"]
    code, _, err = cli("run", *method, "--dataset", "synthsign-tiny", "--distributed", *args)
    assert one_line(code, err, *needles).startswith("error: --distributed")


# ------------------------------------------------------------------------------- torchrun


def _run(args: list[str], env: dict[str, str]) -> float:
    import time

    tic = time.perf_counter()
    done = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return time.perf_counter() - tic


@pytest.mark.slow
def test_torchrun_two_processes_match_one_process(tmp_path: Path) -> None:
    """The same recipe with 2 gloo processes and with one: the test logits agree to within
    floating-point noise (docs/distributed.md#how-close). A small learning rate keeps this
    noise from being amplified over the steps (at the tiny preset's lr 3e-3 one process at 1
    and at 2 threads already differs by up to 1 logit), and keep_prob_end=1 switches DropGraph
    off (its draws are per rank)."""
    from slrbench.store import RecordStore

    env = {k: v for k, v in os.environ.items() if k not in TORCHRUN_ENV}
    env["OMP_NUM_THREADS"] = "1"
    flags = ["run", "--method", "slgcn", "--dataset", "synthsign-tiny", "--streams", "j",
             "--epochs", "2", "--set", "train.sync_bn=true", "--set", "train.lr=0.0001",
             "--set", "schedule.keep_prob_end=1.0", "--threads", "1", "--quiet",
             "--bootstrap", "0"]
    _run(["-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
          str(_free_port()), "-m", "slrbench", *flags, "--distributed",
          "--results", str(tmp_path / "R1")], env)
    _run(["-m", "slrbench", *flags, "--results", str(tmp_path / "R2")], env)

    stores = [RecordStore(tmp_path / name) for name in ("R1", "R2")]
    rows = [{row["split"]: row for row in store.find()} for store in stores]
    assert [len(store.find()) for store in stores] == [2, 2]  # rank 0 alone wrote
    ddp, single = (store.load(r["test"]["run_id"]) for store, r in zip(stores, rows))
    assert ddp.meta["config_sha256"] == single.meta["config_sha256"]
    assert ddp.meta["selected_epoch"] == single.meta["selected_epoch"]
    assert ddp.meta["compute"]["distributed"] == {"world_size": 2, "backend": "gloo",
                                                  "sync_bn": True}
    assert "distributed" not in single.meta["compute"]
    assert np.abs(ddp.scores - single.scores).max() < 0.02  # measured: 0.0032
    agree = np.mean(ddp.scores.argmax(1) == single.scores.argmax(1))
    assert agree >= 0.99, agree
    work = tmp_path / "R1" / "work"
    assert not any(p.is_dir() for p in work.iterdir())  # the work folder was cleared


def test_only_rank_0_prepares_a_data_root(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The other ranks wait for rank 0, then read the copy it prepared (never prepare again:
    they would rebuild the folder rank 0 is reading)."""
    from slrbench.cli.run import _in_turn, _prepared_root
    from slrbench.datasets.prepared import META
    from slrbench.datasets.registry import prepared_dir

    monkeypatch.setenv("SLRBENCH_CACHE", str(tmp_path / "cache"))
    calls: list[str] = []

    class Rank:
        def __init__(self, main: bool) -> None:
            self.is_main = main

        def barrier(self) -> None:
            calls.append("barrier")

    for main, expected in ((True, ["load", "barrier"]), (False, ["barrier", "ready"])):
        calls.clear()
        _in_turn(Rank(main), lambda: calls.append("load"),  # type: ignore[arg-type]
                 lambda: calls.append("ready"))  # type: ignore[arg-type]
        assert calls == expected
    raw, ready = tmp_path / "raw", tmp_path / "ready"
    raw.mkdir()
    ready.mkdir()
    (ready / META).write_text("{}")
    assert _prepared_root("wlasl100", raw) == prepared_dir("wlasl100")
    assert _prepared_root("wlasl100", ready) == ready
    assert _prepared_root("wlasl100", None) is None
