"""`slrbench run`: train every requested stream of a method on a dataset, select on val,
predict val and test once with the selected checkpoint, and store one record per split.

Resumability has two levels: a stream whose val and test records already exist (same config
hash and seed) is skipped, and an interrupted stream continues from its last epoch checkpoint
with `resume=True`.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

from slrbench import __version__
from slrbench.datasets.base import Dataset
from slrbench.errors import SlrbenchError
from slrbench.methods.base import MethodAdapter
from slrbench.metrics import METRIC_DEFINITIONS_VERSION, BootstrapConfig, evaluate
from slrbench.store.provenance import (
    config_sha256,
    environment,
    git_info,
    sha256_file,
    sha256_ids,
    utc_now,
)
from slrbench.store.record_store import RecordStore
from slrbench.store.records import RECORD_VERSION, RunRecord, new_run_id
from slrbench.training.loop import (
    CHECKPOINT_FILE,
    LOG_FILE,
    TrainConfig,
    Trainer,
    count_parameters,
    load_checkpoint,
    seed_everything,
)

EVAL_SPLITS = ("val", "test")
# RunRequest's defaults; both are immutable, so one shared instance each is safe.
_CPU = torch.device("cpu")
_DEFAULT_BOOTSTRAP = BootstrapConfig()


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
    bootstrap: BootstrapConfig | None = _DEFAULT_BOOTSTRAP
    progress: bool = True


@dataclass(frozen=True)
class StreamOutcome:
    stream: str
    status: str  # "trained", "resumed", "skipped"
    run_ids: dict[str, str]  # split -> run id
    metrics: dict[str, dict[str, Any]]  # split -> metrics block


def run(
    request: RunRequest, store: RecordStore, console: Console | None = None
) -> list[StreamOutcome]:
    console = console or Console(quiet=not request.progress)
    return [_run_stream(request, stream, store, console) for stream in request.streams]


def _workdir(
    store: RecordStore, method: str, dataset: str, stream: str, seed: int, sha: str
) -> Path:
    return Path(store.root) / "work" / f"{method}-{dataset}-{stream}-s{seed}-{sha[:12]}"


def _existing(store: RecordStore, identity: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for split in EVAL_SPLITS:
        row = store.latest(split=split, **identity)
        if row is not None:
            found[split] = row
    return found


def _run_stream(
    request: RunRequest, stream: str, store: RecordStore, console: Console
) -> StreamOutcome:
    adapter, dataset = request.method, request.dataset
    spec = dataset.spec
    method = adapter.spec.name
    config = adapter.resolve_config(request.preset, spec, stream, dict(request.overrides or {}))
    config_hash = config_sha256(config)
    identity = {
        "method": method,
        "dataset": spec.name,
        "stream": stream,
        "seed": request.seed,
        "config_sha256": config_hash,
    }
    existing = _existing(store, identity)
    if len(existing) == len(EVAL_SPLITS) and not request.rerun:
        console.print(
            f"[dim]{method}/{stream}: records exist (config {config_hash[:8]}), skipped[/dim]"
        )
        return StreamOutcome(
            stream,
            "skipped",
            {s: r["run_id"] for s, r in existing.items()},
            {s: store.load(r["run_id"]).metrics for s, r in existing.items()},
        )

    workdir = _workdir(store, method, spec.name, stream, request.seed, config_hash)
    interrupted = (workdir / CHECKPOINT_FILE).exists()
    if interrupted and request.restart:
        shutil.rmtree(workdir)
        interrupted = False
    if interrupted and not request.resume:
        epoch = int(load_checkpoint(workdir / CHECKPOINT_FILE)["epoch"]) + 1
        raise SlrbenchError(
            f"{workdir}: an interrupted run of stream '{stream}' stopped after epoch "
            f"{epoch}/{config['train']['epochs']}; pass --resume to continue it or --restart to "
            "discard it"
        )

    started_at, tic = utc_now(), time.perf_counter()
    seed_everything(request.seed)
    data = adapter.stream_data(dataset, config, request.seed)
    model = adapter.build_model(config, spec.num_classes)
    train_config = TrainConfig.from_dict(config["train"])
    trainer = Trainer(
        config=train_config,
        device=request.device,
        seed=request.seed,
        forward=lambda m, x, epoch: adapter.forward(m, x, epoch, config),
        on_epoch_start=lambda m, epoch: adapter.on_epoch_start(m, epoch, config),
        progress=request.progress,
        description=f"{method}/{stream}",
    )
    result = trainer.fit(model, data.train, data.val, workdir, resume=request.resume)
    model.load_state_dict(result.best_state)
    checkpoint = _store_checkpoint(store, model, f"{method}-{spec.name}-{stream}-s{request.seed}")

    shared = {
        "record_version": RECORD_VERSION,
        "method": method,
        "adapter_version": adapter.spec.adapter_version,
        "preset": request.preset,
        "stream": stream,
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
        "config_sha256": config_hash,
        **git_info(Path(__file__).resolve().parent),
        "env": environment(str(request.device)),
        "checkpoint": checkpoint.name,
        "checkpoint_sha256": sha256_file(checkpoint),
        "params": count_parameters(model),
        "selection_split": spec.selection_split,
        "selection_metric": "pi@1 (ties: lower val cross-entropy)",
        "selected_epoch": result.best_epoch,
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

    run_ids: dict[str, str] = {}
    metrics: dict[str, dict[str, Any]] = {}
    for split in EVAL_SPLITS:
        predict_tic = time.perf_counter()
        logits, labels = trainer.predict(model, getattr(data, split))
        predict_s = time.perf_counter() - predict_tic
        ids = np.asarray(spec.splits[split])
        _check_labels(labels, dataset.labels(split), f"{method}/{stream} {split} predictions")
        evaluation = evaluate(logits, labels, spec.num_classes, bootstrap=request.bootstrap)
        meta = dict(shared)
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
                    "train_s": round(result.train_time_s, 3),
                    "epochs": result.epochs_run,
                    "resumed_from_epoch": result.resumed_from,
                    "predict_s": round(predict_s, 3),
                    "predict_samples_per_s": round(len(ids) / max(predict_s, 1e-9), 1),
                },
            }
        )
        meta["run_id"] = new_run_id(
            {k: meta[k] for k in ("method", "dataset", "split", "stream", "seed", "config_sha256")}
        )
        record = RunRecord(
            meta=meta,
            sample_ids=ids,
            labels=labels,
            scores=logits,
            extras={f"per_class_{k.replace('@', '')}": v for k, v in evaluation.per_class.items()},
        )
        store.add(record, side_files={LOG_FILE: workdir / LOG_FILE})
        run_ids[split], metrics[split] = meta["run_id"], meta["metrics"]

    # The selected weights now live under checkpoints/; the resume state is no longer needed.
    shutil.rmtree(workdir, ignore_errors=True)
    status = "resumed" if result.resumed_from is not None else "trained"
    return StreamOutcome(stream, status, run_ids, metrics)


def _check_labels(predicted: np.ndarray, registry: np.ndarray, what: str) -> None:
    if predicted.shape != registry.shape or not np.array_equal(predicted, registry):
        raise SlrbenchError(
            f"{what}: labels disagree with the dataset registry (data pipeline reordered samples)"
        )


def _store_checkpoint(store: RecordStore, model: torch.nn.Module, stem: str) -> Path:
    """Save the selected weights as `<stem>_<YYYYMMDD>-<8 hex of content>.pt`
    (docs/store.md#checkpoints)."""
    from slrbench.training.loop import _save

    directory = Path(store.root) / "checkpoints"
    directory.mkdir(parents=True, exist_ok=True)
    temporary = directory / f".{stem}.pt.tmp"
    _save(temporary, {"model": model.state_dict()})
    digest = sha256_file(temporary)
    final = directory / f"{stem}_{datetime.now(timezone.utc):%Y%m%d}-{digest[:8]}.pt"
    temporary.replace(final)
    return final


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
