"""`slrbench run`: train the requested streams of one or more methods on a dataset, select on
val, predict val and test once with the selected checkpoint, and store one record per split.

A run is planned before anything trains:

1. a stream whose val and test records already exist (same method, config hash and seed) is
   skipped;
2. a stream whose *training* is identical to one already stored or planned (same model family,
   data, model and training sections, dataset and seed; `MethodAdapter.training_identity`),
   is not trained again: its records are copies of the other stream's, with `reused_from`
   naming the source (LGF-SLR's body streams are SL-GCN's streams);
3. an interrupted stream needs `resume=True` (continue from its last epoch) or
   `restart=True`;
4. the rest trains, in `Compute.jobs` worker processes with `Compute.threads` torch threads
   each, or in this process when one job suffices; or, with `RunRequest.distributed`, by
   several processes together under torchrun, rank 0 leading (docs/distributed.md).

The unit of planning is a *training unit* (`MethodSpec.units`): usually one stream, for a
multi-head method one network whose heads are several streams. A unit trains through its
adapter's stages (each resumable in its own work folder) and stores one val and one test
record per head, all committed together.
"""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import pickle
import shutil
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from filelock import FileLock, Timeout
from rich.console import Console

from slrbench import __version__
from slrbench.datasets.base import Dataset
from slrbench.errors import MAX_SEED, SlrbenchError, check_range
from slrbench.methods.base import MethodAdapter, SolverAdapter, Stage
from slrbench.metrics import (
    DEFAULT_BOOTSTRAP,
    METRIC_DEFINITIONS_VERSION,
    BootstrapConfig,
    evaluate,
)
from slrbench.store.atomic import atomic_write_bytes, write_npz
from slrbench.store.provenance import (
    config_sha256,
    environment,
    git_info,
    sha256_file,
    sha256_ids,
    utc_now,
)
from slrbench.store.record_store import RecordStore
from slrbench.store.records import RECORD_VERSION, RUNS_DIR, RunRecord, new_run_id
from slrbench.threads import blas_threads
from slrbench.training.compute import Compute, torch_threads, usable_cores
from slrbench.training.distributed import DistContext, broadcast_object, sync_batchnorm
from slrbench.training.loop import (
    CHECKPOINT_FILE,
    LOG_FILE,
    TrainConfig,
    Trainer,
    checkpoint_bytes,
    count_parameters,
    load_checkpoint,
    load_strict,
    print_line,
    seed_everything,
)

EVAL_SPLITS = ("val", "test")
# RunRequest's default device; immutable, so one shared instance is safe.
_CPU = torch.device("cpu")


@dataclass(frozen=True)
class RunRequest:
    method: MethodAdapter
    dataset: Dataset
    preset: str
    streams: tuple[str, ...]
    seed: int = 0
    device: torch.device = _CPU
    overrides: dict[str, Any] | None = None
    resume: bool = False
    restart: bool = False
    rerun: bool = False
    bootstrap: BootstrapConfig | None = DEFAULT_BOOTSTRAP
    progress: bool = True
    # Start from these native weights (`slrbench import-checkpoint`); with train.epochs = 0
    # they are only evaluated (released weights scored on val and test).
    init: Path | None = None
    # This process's place among several training each unit together (torchrun).
    distributed: DistContext | None = None

    def __post_init__(self) -> None:
        check_range("--seed", self.seed, 0, MAX_SEED)  # before any stream is planned
        for option, given in (("--init", self.init), ("--distributed", self.distributed)):
            if given is not None and isinstance(self.method, SolverAdapter):
                raise SlrbenchError(f"{option}: method '{self.method.spec.name}' is fitted "
                                    "by a solver; expected a method trained by epochs")


@dataclass(frozen=True)
class StreamOutcome:
    stream: str
    status: str  # "trained", "resumed", "evaluated", "skipped", "reused"
    run_ids: dict[str, str]  # split -> run id
    metrics: dict[str, dict[str, Any]]  # split -> metrics block
    method: str = ""
    reused_from: dict[str, str] = field(default_factory=dict)  # split -> source run id


@dataclass
class StreamTask:
    """One training unit of one request, resolved: `stream` names the unit, `heads` the
    streams its records carry (just `stream` for a single-head method)."""

    request: RunRequest
    stream: str
    config: dict[str, Any]
    config_hash: str
    training_hash: str
    heads: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.heads = self.heads or (self.stream,)

    @property
    def method(self) -> str:
        return self.request.method.spec.name

    @property
    def label(self) -> str:
        return f"{self.method}/{self.stream}"

    @property
    def multi_head(self) -> bool:
        return self.heads != (self.stream,)

    def identity(self, head: str | None = None) -> dict[str, Any]:
        return {"method": self.method, "dataset": self.request.dataset.spec.name,
                "stream": head or self.stream, "seed": self.request.seed,
                "config_sha256": self.config_hash}


def run(request: RunRequest, store: RecordStore, console: Console | None = None,
        jobs: int | None = None, threads: int | None = None) -> list[StreamOutcome]:
    """Train (or skip, or reuse) every stream of one request."""
    return run_all([request], store, console, jobs, threads)[0]


def _units(request: RunRequest) -> tuple[str, ...]:
    return request.method.spec.training_units(request.streams)


def run_all(requests: Sequence[RunRequest], store: RecordStore, console: Console | None = None,
            jobs: int | None = None, threads: int | None = None) -> list[list[StreamOutcome]]:
    """Plan and run several requests together, so identical trainings across methods happen
    once; returns the outcomes per request, one per stream (head) of the units trained, in
    stream order. ``jobs`` / ``threads``: see `Compute.resolve` (defaults sized to the units
    that really need training). A distributed request runs on every rank: rank 0 plans,
    trains with the others and writes; the others train what it announces
    (docs/distributed.md#who-does-what)."""
    context = _distributed(requests)
    if context is None:
        return _run_all(requests, store, console, jobs, threads)
    threads = threads or max(1, usable_cores() // context.local_world_size)
    if not context.is_main:
        return _follow(requests[0], store, threads)
    leader = _Leader()
    try:
        result = _run_all(requests, store, console, 1, threads, leader)
    except Exception as error:
        if leader.others_waiting:  # else they are inside a training and torchrun stops them
            broadcast_object(("error", isinstance(error, SlrbenchError), str(error)))
        raise
    broadcast_object(("done", result))
    return result


def _run_all(requests: Sequence[RunRequest], store: RecordStore, console: Console | None,
             jobs: int | None, threads: int | None,
             leader: _Leader | None = None) -> list[list[StreamOutcome]]:
    quiet = not any(r.progress for r in requests)
    console = console or Console(quiet=quiet, emoji=False)
    tasks = [_plan(request, unit) for request in requests for unit in _units(request)]
    outcomes: dict[int, list[StreamOutcome]] = {}
    to_train: list[int] = []
    copies: dict[int, int] = {}  # task -> the task in this run whose training it shares
    first_by_training: dict[str, int] = {}
    for i, task in enumerate(tasks):
        existing = _existing(store, task)
        if existing is not None and not task.request.rerun:
            console.print(f"[dim]{task.label}: records exist (config {task.config_hash[:8]}), "
                          "skipped[/dim]")
            outcomes[i] = _outcome_from_rows(task, "skipped", existing, store)
            continue
        # Sharing a training is for single-head units (a skeleton stream in two methods).
        stored = None if task.request.rerun or task.multi_head else _same_training(store, task)
        if stored is not None:
            outcomes[i] = [reuse_records(task, stored, store)]
            console.print(f"{task.label}: same training as {stored['test']['method']}/"
                          f"{stored['test']['stream']} (stored), records reused")
        elif task.training_hash in first_by_training and not task.multi_head:
            copies[i] = first_by_training[task.training_hash]
        else:
            first_by_training[task.training_hash] = i
            to_train.append(i)
    for i in to_train:
        _check_interrupted(tasks[i], store)

    device = requests[0].device if requests else _CPU
    compute = Compute.resolve(jobs, threads, device, max(1, len(to_train)))
    if to_train:
        console.print(f"training {len(to_train)} stream(s): {compute.jobs} job(s) x "
                      f"{compute.threads} torch thread(s)")
        trained = _train_tasks([tasks[i] for i in to_train], store, compute, console, leader)
        outcomes.update(zip(to_train, trained, strict=True))
    for i, source in copies.items():
        (first,) = outcomes[source]
        rows = {s: store.find(run_id=run_id)[0] for s, run_id in first.run_ids.items()}
        outcomes[i] = [reuse_records(tasks[i], rows, store)]
        console.print(f"{tasks[i].label}: same training as {tasks[source].label}, records reused")

    result, start = [], 0
    for request in requests:
        count = len(_units(request))
        result.append([o for k in range(count) for o in outcomes[start + k]])
        start += count
    return result


def _distributed(requests: Sequence[RunRequest]) -> DistContext | None:
    """The distributed context of a run: one request (one method) at most may have one."""
    contexts = [r.distributed for r in requests if r.distributed is not None]
    if contexts and len(requests) > 1:
        raise SlrbenchError("--distributed: found with several methods; expected one method")
    return contexts[0] if contexts else None


@dataclass
class _Leader:
    """Rank 0's side of a distributed run: it tells the other ranks which unit to train next
    (they wait for its word between trainings), then sends them the outcomes or its error."""

    others_waiting: bool = True  # the other ranks wait for a message, not inside a training

    def announce(self, unit: str) -> None:
        broadcast_object(("train", unit))
        self.others_waiting = False

    def trained(self) -> None:
        self.others_waiting = True  # their part ends with the training; rank 0's goes on


def _follow(request: RunRequest, store: RecordStore, threads: int) -> list[list[StreamOutcome]]:
    """A rank other than 0: train each unit rank 0 announces, together with it (the training
    only: rank 0 predicts and writes), until it sends the outcomes or its error."""
    tasks = {unit: _plan(request, unit) for unit in _units(request)}
    with torch_threads(threads):
        while True:
            message = broadcast_object(None)
            if message[0] == "done":
                return list(message[1])
            if message[0] == "error":
                _, user_error, text = message
                raise (SlrbenchError if user_error else RuntimeError)(f"rank 0: {text}")
            seed_everything(request.seed)
            _fit_epochs(tasks[message[1]], store, "off")


# ------------------------------------------------------------------------------------ planning


def _plan(request: RunRequest, unit: str) -> StreamTask:
    adapter, spec = request.method, request.dataset.spec
    config = adapter.resolve_config(request.preset, spec, unit, dict(request.overrides or {}))
    if request.init is not None:  # other starting weights: another run and another training
        config["init"] = {"checkpoint": request.init.name,
                          "checkpoint_sha256": sha256_file(request.init)}
    training = {
        **adapter.training_identity(config),
        "dataset": {"name": spec.name, "version": spec.version, "vocab": spec.vocab_sha256,
                    "splits": {s: spec.split_sha256(s) for s in spec.splits}},
        "seed": request.seed,
    }
    return StreamTask(request, unit, config, config_sha256(config), config_sha256(training),
                      adapter.heads(config))


@dataclass(frozen=True)
class PlannedUnit:
    """One training unit of a request as a scheduler sees it (`slrbench sweep`)."""

    unit: str
    heads: tuple[str, ...]
    config_sha256: str
    training_sha256: str
    stored: bool  # every head has its val and test records (same config hash)
    cost: float  # `_cost`: epochs x the method's relative epoch cost


def plan_units(request: RunRequest, store: RecordStore) -> list[PlannedUnit]:
    """The request's training units, resolved exactly as `run_all` resolves them."""
    planned = []
    for unit in _units(request):
        task = _plan(request, unit)
        planned.append(PlannedUnit(unit, task.heads, task.config_hash, task.training_hash,
                                   _existing(store, task) is not None, _cost(task)))
    return planned


def _existing(store: RecordStore, task: StreamTask) -> dict[str, dict[str, dict[str, Any]]] | None:
    """head -> split -> stored row when every head of the unit has both records, else None."""
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for head in task.heads:
        for split in EVAL_SPLITS:
            row = store.latest(split=split, **task.identity(head))
            if row is None:
                return None
            found.setdefault(head, {})[split] = row
    return found


def _same_training(store: RecordStore, task: StreamTask) -> dict[str, dict[str, Any]] | None:
    """Val and test rows of a stored record trained exactly like `task`, from one run."""
    rows = store.find(training_sha256=task.training_hash, dataset=task.request.dataset.spec.name)
    by_checkpoint: dict[Any, dict[str, dict[str, Any]]] = {}
    for row in rows:
        by_checkpoint.setdefault(row["checkpoint_sha256"], {})[row["split"]] = row
    complete = [pair for pair in by_checkpoint.values() if set(EVAL_SPLITS) <= set(pair)]
    return max(complete, key=lambda p: p["test"]["finished_at"] or "") if complete else None


def _outcome_from_rows(task: StreamTask, status: str,
                       rows: dict[str, dict[str, dict[str, Any]]],
                       store: RecordStore) -> list[StreamOutcome]:
    return [StreamOutcome(head, status, {s: r["run_id"] for s, r in by_split.items()},
                          {s: store.load(r["run_id"]).metrics for s, r in by_split.items()},
                          method=task.method)
            for head, by_split in rows.items()]


def _workdir(store: RecordStore, task: StreamTask) -> Path:
    spec = task.request.dataset.spec
    return (Path(store.root) / "work" /
            f"{task.method}-{spec.name}-{task.stream}-s{task.request.seed}-{task.config_hash[:12]}")


def _check_interrupted(task: StreamTask, store: RecordStore, holding_lock: bool = False) -> None:
    """Refuse to silently restart or continue an interrupted stream (checked before any
    training starts, so a run never stops halfway on this)."""
    workdir = _workdir(store, task)
    checkpoints = sorted(workdir.glob(f"**/{CHECKPOINT_FILE}"))  # one per stage begun
    if not checkpoints:
        return
    if not holding_lock and _held_elsewhere(_identity_lock(store, task)):
        return  # another process is training it now: train_stream waits, then checks again
    if task.request.restart:
        shutil.rmtree(workdir)
    elif not task.request.resume:
        stages = {_stage_dir(workdir, i, stage, 2): stage
                  for i, stage in enumerate(task.request.method.stages(task.config))}
        last = checkpoints[-1]
        stage = stages.get(last.parent)
        epochs = (stage or Stage("", task.config["train"])).train["epochs"]
        where = f" of stage '{stage.name}'" if stage is not None and len(stages) > 1 else ""
        epoch = int(load_checkpoint(last)["epoch"]) + 1
        raise SlrbenchError(
            f"{workdir}: an interrupted run of stream '{task.stream}' stopped after epoch "
            f"{epoch}/{epochs}{where}; pass --resume to continue it or --restart to discard it"
        )


# ------------------------------------------------------------------------------------ training


def _train_tasks(tasks: list[StreamTask], store: RecordStore, compute: Compute,
                 console: Console, leader: _Leader | None = None) -> list[list[StreamOutcome]]:
    parallel = compute.jobs > 1 and len(tasks) > 1 and all(_picklable(t) for t in tasks)
    if not parallel:
        bars = compute.jobs == 1 and console.is_terminal
        with torch_threads(compute.threads):
            return [train_stream(task, store, compute, "bar" if bars else "lines", leader)
                    for task in tasks]
    context = multiprocessing.get_context(_start_method(compute.threads))
    with ProcessPoolExecutor(max_workers=compute.jobs, mp_context=context,
                             initializer=torch.set_num_threads,
                             initargs=(compute.threads,)) as pool:
        # Longest first, so no long training starts last while the other workers sit idle.
        order = sorted(range(len(tasks)), key=lambda i: -_cost(tasks[i]))
        futures = {i: pool.submit(train_stream, tasks[i], store, compute, "lines")
                   for i in order}
        try:
            return [futures[i].result() for i in range(len(tasks))]
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def _cost(task: StreamTask) -> float:
    """Epochs over all stages times the method's relative cost of an epoch: the runner's
    measure of how long a training takes."""
    adapter = task.request.method
    if isinstance(adapter, SolverAdapter):
        return 0.0
    epochs = sum(int(stage.train["epochs"]) for stage in adapter.stages(task.config))
    return epochs * adapter.spec.epoch_cost


def _start_method(threads: int) -> str:
    """How worker processes start. Tasks travel by pickle either way (SynthSign pickles as a
    reference to its on-disk cache). One-thread workers fork: quick, and a caller's script
    without an ``if __name__ == "__main__"`` guard is not re-imported. A forked child must not
    run OpenMP with several threads when its parent already did (libgomp is not fork-safe), so
    multi-thread workers start from a clean forkserver process instead."""
    methods = multiprocessing.get_all_start_methods()
    if threads == 1 and "fork" in methods:
        return "fork"
    return "forkserver" if "forkserver" in methods else "spawn"


def _picklable(task: StreamTask) -> bool:
    try:
        pickle.dumps(task)
    except Exception:  # an adapter or dataset defined on the fly: train it in this process
        return False
    return True


@dataclass
class _Fitted:
    """One unit, fitted: what either fitter (epoch loop or solver) leaves for the records."""

    scores: dict[str, dict[str, np.ndarray]]  # head -> split -> scores
    predict_s: dict[str, float]  # split -> seconds to predict every head
    labels: dict[str, np.ndarray]  # split -> labels in the order of the scores
    checkpoint: Path
    params: int
    selection: dict[str, Any]  # selection_metric, selected_epoch and what else was chosen
    timings: dict[str, Any]  # train_s, epochs, resumed_from_epoch
    status: str = "trained"  # or "resumed", "evaluated" (--init with --epochs 0)
    # Streams a stage stored from its own selected weights: stream -> (checkpoint, params).
    stage_models: dict[str, tuple[Path, int]] = field(default_factory=dict)


def train_stream(task: StreamTask, store: RecordStore, compute: Compute,
                 progress: str, leader: _Leader | None = None) -> list[StreamOutcome]:
    """Fit one stream, predict val and test with what val selected, store both records as one
    group. Two processes asked for the same stream serialise on its lock; the second then finds
    the first one's records and skips (docs/store.md#concurrent-writers). `leader`: rank 0 of
    a distributed run, which has the other ranks train with it."""
    progress = progress if task.request.progress else "off"
    say = print_line if progress != "off" else (lambda text: None)
    lock = _identity_lock(store, task)
    if _held_elsewhere(lock):
        say(f"{task.label}: another process is training this stream; waiting for it")
    with lock:
        existing = None if task.request.rerun else _existing(store, task)
        if existing is not None:
            say(f"{task.label}: stored by the other process meanwhile, skipped")
            return _outcome_from_rows(task, "skipped", existing, store)
        _check_interrupted(task, store, holding_lock=True)  # the other one may have died
        started_at, tic = utc_now(), time.perf_counter()
        seed_everything(task.request.seed)
        fitted: _Fitted | None
        if isinstance(task.request.method, SolverAdapter):
            fitted = _fit_solver(task, store)
        else:
            if leader is not None:
                leader.announce(task.stream)
            fitted = _fit_epochs(task, store, progress, leader)
        assert fitted is not None  # None only on ranks other than 0, which never get here
        outcome = _store_records(task, store, compute, fitted, started_at, tic)
        # The selected weights now live under checkpoints/; the resume state is no longer needed.
        shutil.rmtree(_workdir(store, task), ignore_errors=True)
    if progress == "lines":
        tests = ", ".join((f"{o.stream} " if task.multi_head else "")
                          + f"{100 * o.metrics['test']['pi@1']['value']:.1f} %" for o in outcome)
        print_line(f"{task.label}: done in {time.perf_counter() - tic:.0f} s, test P-I@1 "
                   f"{tests}")
    return outcome


def _identity_lock(store: RecordStore, task: StreamTask) -> FileLock:
    workdir = _workdir(store, task)
    workdir.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(workdir.parent / f".{workdir.name}.lock"))


def _held_elsewhere(lock: FileLock) -> bool:
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    lock.release()
    return False


def _stage_dir(workdir: Path, index: int, stage: Stage, count: int) -> Path:
    """A single-stage recipe works at the top of the work folder (as before stages existed);
    each stage of a longer recipe in its own numbered folder."""
    return workdir if count == 1 else workdir / f"stage{index + 1}-{stage.name}"


def _stage_trainer(task: StreamTask, stage: Stage | None, progress: str,
                   epoch_offset: int = 0) -> Trainer:
    """A trainer for one stage (its loss, selection head and modalities), or with `stage`
    None the predictor of the final val and test scores (every head, the prediction
    modalities)."""
    request, config = task.request, task.config
    adapter = request.method
    single = _plain_contract(adapter) and not task.multi_head
    train = stage.train if stage is not None else config["train"]
    trainer = Trainer(
        config=TrainConfig.from_dict({**train, "epochs": max(1, int(train["epochs"]))}
                                     if stage is None else train),
        device=request.device,
        seed=request.seed,
        forward=lambda m, x, epoch: adapter.forward(m, x, epoch, config),
        on_epoch_start=lambda m, epoch: adapter.on_epoch_start(m, epoch, config),
        progress=progress if stage is not None else "off",
        description=task.label if single or stage is None else f"{task.label} [{stage.name}]",
        epoch_offset=epoch_offset,
        distributed=request.distributed if stage is not None else None,
    )
    if single:
        return trainer  # the plain contract: forward + cross-entropy, one head
    if stage is None:
        trainer.heads = lambda m, x: adapter.predict_heads(m, x, config)
        trainer.modalities = adapter.prediction_modalities(config)
        return trainer
    trainer.loss = lambda m, x, y, epoch: adapter.training_loss(m, x, y, epoch, config, stage)
    if type(adapter).after_step is not MethodAdapter.after_step:
        trainer.after_step = lambda m, epoch: adapter.after_step(m, epoch, config, stage)
    trainer.heads = lambda m, x: adapter.predict_heads(m, x, config, stage)
    trainer.select_on = stage.select_on or task.heads[0]
    trainer.modalities = stage.modalities
    return trainer


def _plain_contract(adapter: MethodAdapter) -> bool:
    """The adapter keeps the single-stage, cross-entropy contract (the skeleton methods): the
    runner then trains exactly as it did before multi-head methods existed."""
    kind = type(adapter)
    return all(getattr(kind, hook) is getattr(MethodAdapter, hook)
               for hook in ("stages", "training_loss", "predict_heads", "prediction_modalities",
                            "after_step"))


def _fit_epochs(task: StreamTask, store: RecordStore, progress: str,
                leader: _Leader | None = None) -> _Fitted | None:
    """The shared epoch loop, stage by stage: train, keep the epoch val selects, start the
    next stage from it; then predict val and test with every head. In a distributed run the
    ranks other than 0 only train (and return None): rank 0 predicts and stores, and tells
    `leader` when the others are done."""
    request, config = task.request, task.config
    adapter, dataset = request.method, request.dataset
    writes = request.distributed is None or request.distributed.is_main
    data = adapter.stream_data(dataset, config, request.seed)
    model = adapter.build_model(config, dataset.spec.num_classes)
    if request.init is not None:
        _load_init(model, request.init)
    if request.init is not None and config["train"]["epochs"] == 0:
        if leader is not None:
            leader.trained()
        return _evaluate_only(task, store, model, data) if writes else None
    if request.distributed is not None and config["train"].get("sync_bn"):
        model = sync_batchnorm(model, request.device)
    stages = adapter.stages(config)
    workdir = _workdir(store, task)
    results, offset = [], 0
    stage_scores: dict[str, dict[str, np.ndarray]] = {}
    stage_seconds = dict.fromkeys(EVAL_SPLITS, 0.0)
    stage_models: dict[str, tuple[Path, int]] = {}
    for index, stage in enumerate(stages):
        trainer = _stage_trainer(task, stage, progress, offset)
        stage_dir = _stage_dir(workdir, index, stage, len(stages))
        result = trainer.fit(model, data.train, data.val, stage_dir, resume=request.resume)
        model.load_state_dict(result.best_state)
        results.append(result)
        offset += result.epochs_run
        if stage.stores and writes:  # the stage's own model gives streams (CAMFuse's pathways)
            scores, seconds, _ = _predict_splits(task, trainer, model, data, stage.stores)
            stage_scores.update(scores)
            stage_seconds = {s: stage_seconds[s] + seconds[s] for s in EVAL_SPLITS}
            path = _store_checkpoint(store, task, checkpoint_bytes(
                {"model": model.state_dict()}), ".pt", part=stage.name)
            stage_models.update({stream: (path, adapter.head_parameters(model, stream, config))
                                 for stream in stage.stores.values()})
    if leader is not None:
        leader.trained()
    if not writes:
        return None
    if len(stages) > 1:
        _merge_stage_logs(workdir, stages)
    checkpoint = _store_checkpoint(store, task, checkpoint_bytes({"model": model.state_dict()}),
                                   ".pt")
    final = {head: head for head in task.heads if head not in stage_scores}
    scores, predict_s, labels = _predict_splits(task, _stage_trainer(task, None, "off"),
                                                model, data, final)
    scores.update(stage_scores)
    predict_s = {s: predict_s[s] + stage_seconds[s] for s in EVAL_SPLITS}
    selection: dict[str, Any] = {"selection_metric": "pi@1 (ties: lower val cross-entropy)",
                                 "selected_epoch": results[-1].best_epoch}
    if len(stages) > 1:
        selection["stages"] = [
            {"name": stage.name, "epochs": result.epochs_run, "selected_epoch": result.best_epoch,
             "select_on": stage.select_on or task.heads[0], "val_pi@1": result.best_metric,
             "modalities": list(stage.modalities), "train_s": round(result.train_time_s, 3)}
            for stage, result in zip(stages, results, strict=True)]
    resumed = next((r.resumed_from for r in results if r.resumed_from is not None), None)
    return _Fitted(
        scores, predict_s, labels, checkpoint, count_parameters(model), selection,
        {"train_s": round(sum(r.train_time_s for r in results), 3),
         "epochs": sum(r.epochs_run for r in results), "resumed_from_epoch": resumed},
        status="resumed" if any(r.resumed_from is not None for r in results) else "trained",
        stage_models=stage_models,
    )


def _merge_stage_logs(workdir: Path, stages: tuple[Stage, ...]) -> None:
    """One log for the record: every stage's epochs in order, each line naming its stage."""
    import json

    lines = []
    for index, stage in enumerate(stages):
        log = _stage_dir(workdir, index, stage, len(stages)) / LOG_FILE
        for line in log.read_text().splitlines():
            lines.append(json.dumps({"stage": stage.name, **json.loads(line)}) + "\n")
    atomic_write_bytes(workdir / LOG_FILE, "".join(lines).encode())


def _predict_splits(task: StreamTask, predictor: Trainer, model: torch.nn.Module, data: Any,
                    names: dict[str, str] | None = None
                    ) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, float],
                               dict[str, np.ndarray]]:
    """Val and test logits (stream -> split -> logits) of the heads `names` maps to streams
    (default: every head of the unit, under its own name), the seconds each split took, and
    the labels, checked against the registry order."""
    names = names if names is not None else {head: head for head in task.heads}
    scores: dict[str, dict[str, np.ndarray]] = {}
    predict_s, labels = {}, {}
    for split in EVAL_SPLITS:
        tic = time.perf_counter()
        heads, labels[split] = predictor.predict_heads(model, getattr(data, split))
        predict_s[split] = time.perf_counter() - tic
        if not task.multi_head:  # the single head is unnamed in the plain contract
            heads = {task.heads[0]: next(iter(heads.values()))}
        if set(heads) != set(names):
            raise SlrbenchError(f"{task.label}: predicted heads {sorted(heads)}; expected "
                                f"{sorted(names)} (MethodAdapter.heads, Stage.stores)")
        for head, stream in names.items():
            scores.setdefault(stream, {})[split] = heads[head]
        _check_labels(labels[split], task.request.dataset.labels(split),
                      f"{task.label} {split} predictions")
    return scores, predict_s, labels


def _load_init(model: torch.nn.Module, path: Path) -> None:
    """Native weights from `path` (weights_only), strictly: same architecture, every tensor."""
    state = load_checkpoint(path).get("model")
    if not isinstance(state, dict):
        raise SlrbenchError(f"--init {path}: no 'model' state dict; expected a native "
                            "checkpoint (see `slrbench import-checkpoint`)")
    load_strict(model, state, f"--init {path}")


def _evaluate_only(task: StreamTask, store: RecordStore, model: torch.nn.Module,
                   data: Any) -> _Fitted:
    """--init with --epochs 0: score released weights on val and test, no training, no
    selection here (it happened upstream, on a split slrbench cannot know)."""
    request = task.request
    model.to(request.device)
    checkpoint = _store_checkpoint(store, task, checkpoint_bytes({"model": model.state_dict()}),
                                   ".pt")
    config = task.config
    readable = set(request.method.prediction_modalities(config))
    # A head whose stage reads inputs the final prediction may not (self-learning fusion's
    # `imu` upper bound reads the sensor) is predicted the way its stage predicts it.
    own = [stage for stage in request.method.stages(config)
           if stage.stores and readable and not set(stage.modalities) <= readable]
    by_stage = {stream for stage in own for stream in stage.stores.values()}
    scores, predict_s, labels = _predict_splits(
        task, _stage_trainer(task, None, "off"), model, data,
        {head: head for head in task.heads if head not in by_stage})
    for stage in own:
        stage_scores, seconds, _ = _predict_splits(task, _stage_trainer(task, stage, "off"),
                                                   model, data, stage.stores)
        scores.update(stage_scores)
        predict_s = {s: predict_s[s] + seconds[s] for s in EVAL_SPLITS}
    return _Fitted(scores, predict_s, labels, checkpoint, count_parameters(model),
                   {"selection_metric": None, "selected_epoch": None,
                    "selection_split": "unknown"},
                   {"train_s": 0.0, "epochs": 0, "resumed_from_epoch": None},
                   status="evaluated")


def _fit_solver(task: StreamTask, store: RecordStore) -> _Fitted:
    """A solver-fitted method: one call gives val-selected val and test scores."""
    request, dataset = task.request, task.request.dataset
    adapter = request.method
    assert isinstance(adapter, SolverAdapter)
    with blas_threads(torch.get_num_threads()):  # this job's thread budget
        fit = adapter.fit(dataset, task.config, request.seed)
    buffer = io.BytesIO()
    write_npz(buffer, fit.state)
    checkpoint = _store_checkpoint(store, task, buffer.getvalue(), ".npz")
    return _Fitted(
        {task.stream: {split: fit.scores[split] for split in EVAL_SPLITS}},
        {split: fit.predict_s[split] for split in EVAL_SPLITS},
        {split: dataset.labels(split) for split in EVAL_SPLITS},
        checkpoint, fit.params,
        {"selection_metric": "pi@1 on val (ties: the smaller C)", "selected_epoch": None,
         "selected": fit.selection},
        {"train_s": round(fit.fit_time_s, 3), "epochs": None, "resumed_from_epoch": None},
    )


def _store_records(task: StreamTask, store: RecordStore, compute: Compute, fitted: _Fitted,
                   started_at: str, tic: float) -> list[StreamOutcome]:
    """The val and test records of every head of a fitted unit, committed together."""
    request, config = task.request, task.config
    adapter, dataset = request.method, request.dataset
    spec = dataset.spec
    shared = {
        "record_version": RECORD_VERSION,
        "method": task.method,
        "adapter_version": adapter.spec.adapter_version,
        "preset": request.preset,
        "overrides": dict(request.overrides or {}),
        "stream": task.stream,
        "seed": request.seed,
        "reconstruction": adapter.spec.reconstruction,
        "decisions": list(config.get("decisions", [])),
        "dataset": spec.name,
        "subset": spec.name,
        "split_version": spec.version,
        "vocab_sha256": spec.vocab_sha256,
        "num_classes": spec.num_classes,
        "missing_ids": [],
        "pose": _pose_block(dataset, config),
        "config": config,
        "config_sha256": task.config_hash,
        "training_sha256": task.training_hash,
        **git_info(Path(__file__).resolve().parent),
        "env": environment(str(request.device)),
        "compute": {**compute.provenance(), "torch_threads": torch.get_num_threads(),
                    **_distributed_provenance(request, config)},
        "checkpoint": fitted.checkpoint.name,
        "checkpoint_sha256": sha256_file(fitted.checkpoint),
        "params": fitted.params,
        "selection_split": spec.selection_split,
        **fitted.selection,
        "test_protocol": config.get("test_protocol", {}),
        "score_kind": "logits",
        "test_tuned": False,
        "val_test_merged": False,
        "leaky_reasons": [],
        "metric_definitions_version": METRIC_DEFINITIONS_VERSION,
        "bootstrap": request.bootstrap.to_dict() if request.bootstrap else None,
        "started_at": started_at,
        "slrbench_version": __version__,
    }
    records = []
    log = _workdir(store, task) / LOG_FILE
    for head, split in ((h, s) for h in task.heads for s in EVAL_SPLITS):
        logits, predict_s = fitted.scores[head][split], fitted.predict_s[split]
        labels = fitted.labels[split]
        ids = np.asarray(spec.splits[split])
        evaluation = evaluate(logits, labels, spec.num_classes, bootstrap=request.bootstrap)
        meta = dict(shared)
        if task.multi_head:  # one record per head; `unit` names the training they share
            meta.update({"stream": head, "unit": task.stream})
        if head in fitted.stage_models:  # a stage's own model: its weights, its parameters
            path, params = fitted.stage_models[head]
            meta.update({"checkpoint": path.name, "checkpoint_sha256": sha256_file(path),
                         "params": params})
        meta.update(
            {
                "split": split,
                "split_sha256": spec.split_sha256(split),
                "n_eval": len(ids),
                "n_official": spec.n_official(split),
                "classes_present": evaluation.classes_present,
                "ids_sha256": sha256_ids(ids.tolist()),
                "metrics": evaluation.to_dict()["metrics"],
                "chance": evaluation.chance,
                "finished_at": utc_now(),
                "wall_time_s": round(time.perf_counter() - tic, 3),
                "timings": {
                    **fitted.timings,
                    "predict_s": round(predict_s, 3),
                    "predict_samples_per_s": round(len(ids) / max(predict_s, 1e-9), 1),
                },
            }
        )
        meta["run_id"] = _run_id(meta)
        record = RunRecord(
            meta=meta,
            sample_ids=ids,
            labels=labels,
            scores=logits,
            extras={f"per_class_{k.replace('@', '')}": v for k, v in evaluation.per_class.items()},
        )
        records.append((record, {LOG_FILE: log} if log.exists() else None))
    store.add_group(records)
    return [StreamOutcome(head, fitted.status,
                          {r.split: r.run_id for r, _ in records if r.stream == head},
                          {r.split: r.metrics for r, _ in records if r.stream == head},
                          method=task.method)
            for head in task.heads]


def _distributed_provenance(request: RunRequest, config: dict[str, Any]) -> dict[str, Any]:
    """How many processes trained the unit (a record's compute, not its config: the same
    recipe); nothing for one process, so its records are as before."""
    if request.distributed is None:
        return {}
    sync_bn = bool(config.get("train", {}).get("sync_bn", False))
    return {"distributed": request.distributed.provenance(sync_bn)}


def _run_id(meta: dict[str, Any]) -> str:
    return new_run_id(
        {k: meta[k] for k in ("method", "dataset", "split", "stream", "seed", "config_sha256")})


# -------------------------------------------------------------------------------------- reuse


def reuse_records(task: StreamTask, sources: dict[str, dict[str, Any]],
                  store: RecordStore) -> StreamOutcome:
    """Records for `task` that repeat the outputs of identical trainings (`sources`: split ->
    index row). Provenance of the computation (code version, environment, threads, checkpoint,
    timings) is the source's; identity and configuration are the task's."""
    adapter, request = task.request.method, task.request
    records: list[tuple[RunRecord, dict[str, Path] | None]] = []
    for split in EVAL_SPLITS:
        source = store.load_checked(sources[split]["run_id"])
        meta = dict(source.meta)
        meta.update(
            {
                "method": task.method,
                "adapter_version": adapter.spec.adapter_version,
                "preset": request.preset,
                "overrides": dict(request.overrides or {}),
                "stream": task.stream,
                "reconstruction": adapter.spec.reconstruction,
                "decisions": list(task.config.get("decisions", [])),
                "config": task.config,
                "config_sha256": task.config_hash,
                "reused_from": source.run_id,
                "finished_at": utc_now(),
            }
        )
        meta.pop("commit_group", None)  # the copies form their own group
        meta["run_id"] = _run_id(meta)
        record = RunRecord(meta=meta, sample_ids=source.sample_ids, labels=source.labels,
                           scores=source.scores, extras=dict(source.extras))
        log = Path(store.root) / RUNS_DIR / source.run_id / LOG_FILE
        records.append((record, {LOG_FILE: log} if log.exists() else None))
    store.add_group(records)
    return StreamOutcome(task.stream, "reused", {r.split: r.run_id for r, _ in records},
                         {r.split: r.metrics for r, _ in records}, method=task.method,
                         reused_from={s: r["run_id"] for s, r in sources.items()})


# -------------------------------------------------------------------------------------- helpers


def _check_labels(predicted: np.ndarray, registry: np.ndarray, what: str) -> None:
    if predicted.shape != registry.shape or not np.array_equal(predicted, registry):
        raise SlrbenchError(
            f"{what}: labels disagree with the dataset registry (data pipeline reordered samples)"
        )


def _store_checkpoint(store: RecordStore, task: StreamTask, data: bytes, suffix: str,
                      part: str = "") -> Path:
    """Store the selected weights as `<stem>_<YYYYMMDD>-<8 hex of content><suffix>`
    (docs/store.md#checkpoints); written atomically under a unique temporary name. `part`:
    an earlier stage's selected weights (`<stem>.<stage>`)."""
    spec = task.request.dataset.spec
    stem = f"{task.method}-{spec.name}-{task.stream}-s{task.request.seed}"
    stem += f".{part}" if part else ""
    digest = hashlib.sha256(data).hexdigest()
    final = (Path(store.root) / "checkpoints" /
             f"{stem}_{datetime.now(timezone.utc):%Y%m%d}-{digest[:8]}{suffix}")
    return atomic_write_bytes(final, data)


def _pose_block(dataset: Dataset, config: dict[str, Any]) -> dict[str, Any]:
    spec = dataset.spec
    extractor = spec.extra.get("pose_extractor", spec.name)
    return {
        "extractor": extractor,
        "version": spec.version,
        "layout": spec.layout,
        "subset": config.get("data", {}).get("layout"),
        "frame_flipped": bool(spec.extra.get("frame_flipped", False)),
    }
