"""The shared training loop: device choice, AMP on CUDA, seeding, per-epoch selection on val,
resumable checkpoints, progress (rich bars on a terminal, one line per epoch otherwise) and
per-epoch logs.

Selection rule (docs/evaluation.md#splits-and-selection): the checkpoint with the best val P-I@1
wins, ties broken by the lower val cross-entropy. The test split never enters this module.
"""

from __future__ import annotations

import io
import json
import math
import random
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset

from slrbench.config import OPTIONAL_FIELDS, check_fields
from slrbench.errors import SlrbenchError
from slrbench.store.atomic import atomic_write_bytes, atomic_write_text
from slrbench.training.distributed import (
    DistContext,
    RankBatchSampler,
    average_gradients,
    broadcast_from_main,
    loss_weight,
    rank_seed,
    sum_over_ranks,
)

PROGRESS_MODES = ("bar", "lines", "off")
CHECKPOINT_FILE = "checkpoint.pt"
BEST_FILE = "best.pt"
LOG_FILE = "log.jsonl"


@dataclass(frozen=True)
class TrainConfig:
    epochs: int
    batch_size: int
    lr: float
    optimizer: str = "sgd"  # "sgd" (Nesterov) or "adam"
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 1e-4
    warmup_epochs: int = 0
    schedule: str = "cosine"  # "cosine", "step" or "constant"
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    eval_batch_size: int = 64
    num_workers: int = 0
    amp: bool = True  # only takes effect on CUDA
    grad_clip: float | None = None
    label_smoothing: float = 0.0
    # Synchronised BatchNorm when several processes train one stream (docs/distributed.md);
    # nothing changes in one process.
    sync_bn: bool = False

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        check_fields(cls, data, "train config")
        values = dict(data)
        if "milestones" in values:
            values["milestones"] = tuple(values["milestones"])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["milestones"] = list(self.milestones)
        for name, default in OPTIONAL_FIELDS["train"].items():  # left out at their default
            if data[name] == default:
                del data[name]
        return data

    def lr_at(self, epoch: int) -> float:
        """Epoch-level learning rate: linear warm-up, then the schedule."""
        if epoch < self.warmup_epochs:
            return self.lr * (epoch + 1) / self.warmup_epochs
        if self.schedule == "constant":
            return self.lr
        if self.schedule == "step":
            return self.lr * self.gamma ** sum(epoch >= m for m in self.milestones)
        if self.schedule == "cosine":
            span = max(1, self.epochs - self.warmup_epochs)
            progress = (epoch - self.warmup_epochs) / span
            return 0.5 * self.lr * (1.0 + math.cos(math.pi * progress))
        raise SlrbenchError(
            f"train.schedule: found '{self.schedule}', expected cosine, step or constant"
        )


def select_device(name: str) -> torch.device:
    """`auto` takes CUDA when present; asking for CUDA without it is a user error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise SlrbenchError(
            f"--device: found '{name}', expected auto, cpu, cuda or cuda:N"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SlrbenchError(f"--device: found '{name}', but no CUDA device is available; use cpu")
    if device.type not in ("cpu", "cuda"):
        raise SlrbenchError(f"--device: found '{name}', expected auto, cpu, cuda or cuda:N")
    return device


def seed_everything(seed: int, deterministic: bool = True) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        # CPU kernels are deterministic for a fixed thread count; cuDNN needs telling.
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


@dataclass
class TrainResult:
    best_epoch: int
    best_metric: float
    best_val_loss: float
    epochs_run: int
    history: list[dict[str, Any]]
    best_state: dict[str, torch.Tensor]
    train_time_s: float
    resumed_from: int | None = None


@dataclass
class Trainer:
    """Trains one model on one stream. Hooks carry the method-specific parts."""

    config: TrainConfig
    device: torch.device
    seed: int = 0
    forward: Callable[[nn.Module, Any, int], torch.Tensor] = field(
        default=lambda model, x, epoch: model(x)
    )
    on_epoch_start: Callable[[nn.Module, int], None] = field(default=lambda model, epoch: None)
    # Multi-head methods (docs/architecture.md#multi-head-methods). `loss`: (model, inputs,
    # targets, epoch) -> (loss, logits for the training accuracy); None: cross-entropy of
    # `forward`. `heads`: (model, inputs) -> head -> logits at prediction; None: `forward`.
    # `select_on`: the head whose val P-I@1 selects. `modalities`: what the batches carry.
    loss: Callable[[nn.Module, Any, torch.Tensor, int],
                   tuple[torch.Tensor, torch.Tensor]] | None = None
    heads: Callable[[nn.Module, Any], dict[str, torch.Tensor]] | None = None
    select_on: str | None = None
    modalities: tuple[str, ...] = ()
    # (model, epoch) after every optimiser step; None: nothing.
    after_step: Callable[[nn.Module, int], None] | None = None
    # Epochs of the earlier stages: a later stage's batch order and augmentation draws go on
    # from them instead of repeating the first stage's.
    epoch_offset: int = 0
    # "bar": rich bars (a terminal, one training at a time); "lines": one line per epoch on
    # stdout, readable in logs and from parallel workers; "off". True / False = "bar" / "off".
    progress: bool | str = True
    description: str = "train"
    # Several processes train together (docs/distributed.md): each takes its share of every
    # batch, gradients are averaged, only rank 0 writes the work folder's files.
    distributed: DistContext | None = None

    def __post_init__(self) -> None:
        mode = self.progress
        if isinstance(mode, bool):
            mode = "bar" if mode else "off"
        if mode not in PROGRESS_MODES:
            raise SlrbenchError(
                f"progress: found {self.progress!r}; expected one of {', '.join(PROGRESS_MODES)}"
            )
        self.progress = mode if self.writes else "off"  # rank 0 alone reports

    @property
    def writes(self) -> bool:
        """This process writes the work folder and reports (one process, or rank 0)."""
        return self.distributed is None or self.distributed.is_main

    @property
    def amp_enabled(self) -> bool:
        return self.config.amp and self.device.type == "cuda"

    # -- data ------------------------------------------------------------------------------
    def _loader(self, dataset: TorchDataset, train: bool, epoch: int = 0) -> DataLoader:
        generator = torch.Generator()
        # A per-epoch generator makes the batch order reproducible and resumable without
        # saving loader state.
        generator.manual_seed(self.seed * 100_003 + self.epoch_offset + epoch)
        if train and self.distributed is not None:
            return self._rank_loader(dataset, generator)
        return DataLoader(
            dataset,
            batch_size=self.config.batch_size if train else self.config.eval_batch_size,
            shuffle=train,
            drop_last=False,
            num_workers=self.config.num_workers,
            # A dataset may batch its own way (the video pipeline keeps its memory layout).
            collate_fn=getattr(dataset, "collate", None),
            generator=generator,
            pin_memory=self.device.type == "cuda",
        )

    def _rank_loader(self, dataset: TorchDataset, generator: torch.Generator) -> DataLoader:
        """This rank's share of the batches `_loader` builds in one process (same generator,
        same permutation, same global batches; docs/distributed.md#batches)."""
        assert self.distributed is not None
        sampler = RankBatchSampler(len(dataset), self.config.batch_size,  # type: ignore[arg-type]
                                   self.distributed.rank, self.distributed.world_size, generator)
        return DataLoader(
            dataset,
            batch_sampler=sampler,
            num_workers=self.config.num_workers,
            collate_fn=getattr(dataset, "collate", None),
            generator=generator,  # DataLoader draws its worker seed from it first, as above
            pin_memory=self.device.type == "cuda",
        )

    def _set_epoch(self, dataset: TorchDataset, epoch: int) -> None:
        set_epoch = getattr(dataset, "set_epoch", None)
        if callable(set_epoch):
            set_epoch(self.epoch_offset + epoch)

    def _set_modalities(self, dataset: TorchDataset) -> None:
        if not self.modalities:
            return
        set_modalities = getattr(dataset, "set_modalities", None)
        if not callable(set_modalities):
            raise SlrbenchError(f"{self.description}: modalities {list(self.modalities)} asked "
                                f"of a {type(dataset).__name__}, which has no set_modalities")
        set_modalities(self.modalities)

    def _to_device(self, inputs: Any) -> Any:
        if isinstance(inputs, dict):  # several modalities
            return {k: v.to(self.device, non_blocking=True) for k, v in inputs.items()}
        return inputs.to(self.device, non_blocking=True)

    # -- prediction ------------------------------------------------------------------------
    @torch.no_grad()
    def predict_heads(self, model: nn.Module, dataset: TorchDataset
                      ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Head -> logits (N, K) float32, and labels (N,), in dataset order. Without `heads`
        the one head is called "logits"."""
        model.eval()
        self._set_modalities(dataset)
        outputs: dict[str, list[np.ndarray]] = {}
        labels: list[np.ndarray] = []
        for inputs, targets, _ in self._loader(dataset, train=False):
            inputs = self._to_device(inputs)
            with torch.autocast(self.device.type, enabled=self.amp_enabled):
                heads = (self.heads(model, inputs) if self.heads is not None
                         else {"logits": self.forward(model, inputs, -1)})
            for name, logits in heads.items():
                outputs.setdefault(name, []).append(logits.float().cpu().numpy())
            labels.append(targets.numpy())
        return ({name: np.concatenate(parts).astype(np.float32)
                 for name, parts in outputs.items()},
                np.concatenate(labels).astype(np.int64))

    def predict(self, model: nn.Module, dataset: TorchDataset) -> tuple[np.ndarray, np.ndarray]:
        """Logits (N, K) float32 of the selection head (the only one without `heads`) and
        labels (N,) in dataset order."""
        heads, labels = self.predict_heads(model, dataset)
        if self.select_on is None and len(heads) == 1:
            return next(iter(heads.values())), labels
        if self.select_on not in heads:
            raise SlrbenchError(f"{self.description}: selection head {self.select_on!r}; "
                                f"expected one of the predicted heads {sorted(heads)}")
        return heads[self.select_on], labels

    def _evaluate(self, model: nn.Module, dataset: TorchDataset) -> tuple[float, float]:
        """(P-I@1, mean cross-entropy) on `dataset` with the pessimistic tie rule."""
        from slrbench.metrics import per_instance_accuracy, topk_hits

        logits, labels = self.predict(model, dataset)
        loss = nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels))
        return per_instance_accuracy(topk_hits(logits, labels, 1)), float(loss)

    # -- training --------------------------------------------------------------------------
    def _make_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        # All parameters go to the optimiser, frozen ones included: adapters may unfreeze
        # some later (SL-GCN's adjacency after epoch 0) and parameters without grads are skipped.
        cfg = self.config
        if cfg.optimizer == "sgd":
            return torch.optim.SGD(
                model.parameters(),
                lr=cfg.lr,
                momentum=cfg.momentum,
                nesterov=cfg.nesterov,
                weight_decay=cfg.weight_decay,
            )
        if cfg.optimizer == "adam":
            return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        raise SlrbenchError(f"train.optimizer: found '{cfg.optimizer}', expected sgd or adam")

    def fit(
        self,
        model: nn.Module,
        train_set: TorchDataset,
        val_set: TorchDataset,
        workdir: Path,
        resume: bool = False,
    ) -> TrainResult:
        workdir.mkdir(parents=True, exist_ok=True)
        model.to(self.device)
        optimizer = self._make_optimizer(model)
        scaler = torch.amp.GradScaler("cuda", enabled=self.amp_enabled)

        history: list[dict[str, Any]] = []
        best = {"epoch": -1, "metric": -1.0, "loss": math.inf}
        start_epoch, resumed_from, elapsed = 0, None, 0.0
        checkpoint_path = workdir / CHECKPOINT_FILE
        if resume and checkpoint_path.exists():
            state = load_checkpoint(checkpoint_path)
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scaler.load_state_dict(state["scaler"])
            torch.set_rng_state(state["torch_rng"])
            history, best = state["history"], state["best"]
            start_epoch = resumed_from = int(state["epoch"]) + 1
            elapsed = float(state["elapsed_s"])
        if self.distributed is not None:
            # Every rank starts from rank 0's weights, as DDP does when it wraps a model.
            broadcast_from_main([*model.parameters(), *_synced_buffers(model)])

        epochs = self.config.epochs
        with _progress(self.progress == "bar") as bar:
            task = bar.add_task(self.description, total=epochs, completed=start_epoch)
            for epoch in range(start_epoch, epochs):
                tic = time.perf_counter()
                lr = self.config.lr_at(epoch)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                self.on_epoch_start(model, epoch)
                self._set_epoch(train_set, epoch)
                self._set_modalities(train_set)
                train_loss, train_acc = self._train_epoch(
                    model, train_set, epoch, optimizer, scaler, bar
                )
                val_acc, val_loss = self._evaluate(model, val_set)
                improved = val_acc > best["metric"] or (
                    val_acc == best["metric"] and val_loss < best["loss"]
                )
                if improved:
                    best = {"epoch": epoch, "metric": val_acc, "loss": val_loss}
                    if self.writes:
                        _save(workdir / BEST_FILE, {"model": model.state_dict(), "epoch": epoch})
                elapsed += time.perf_counter() - tic
                history.append(
                    {
                        "epoch": epoch,
                        "lr": lr,
                        "train_loss": train_loss,
                        "train_acc": train_acc,
                        "val_loss": val_loss,
                        "val_pi@1": val_acc,
                        "best_epoch": best["epoch"],
                        "epoch_time_s": round(time.perf_counter() - tic, 3),
                    }
                )
                if self.writes:
                    _save(
                        checkpoint_path,
                        {
                            "model": model.state_dict(),
                            "optimizer": optimizer.state_dict(),
                            "scaler": scaler.state_dict(),
                            "torch_rng": torch.get_rng_state(),
                            "epoch": epoch,
                            "history": history,
                            "best": best,
                            "elapsed_s": elapsed,
                        },
                    )
                    atomic_write_text(
                        workdir / LOG_FILE, "".join(json.dumps(h) + "\n" for h in history)
                    )
                bar.update(
                    task,
                    advance=1,
                    description=(
                        f"{self.description} val@1 {val_acc:.3f} (best {best['metric']:.3f})"
                    ),
                )
                if self.progress == "lines":
                    print_line(
                        f"{self.description}: epoch {epoch + 1}/{epochs} loss {train_loss:.3f} "
                        f"val@1 {val_acc:.3f} (best {best['metric']:.3f} at epoch "
                        f"{best['epoch'] + 1}) {history[-1]['epoch_time_s']:.1f} s"
                    )

        if best["epoch"] < 0:
            raise SlrbenchError(f"train.epochs: found {epochs}, expected at least 1")
        best_state = self._best_state(workdir)
        return TrainResult(
            best_epoch=int(best["epoch"]),
            best_metric=float(best["metric"]),
            best_val_loss=float(best["loss"]),
            epochs_run=epochs,
            history=history,
            best_state=best_state,
            train_time_s=elapsed,
            resumed_from=resumed_from,
        )

    def _best_state(self, workdir: Path) -> dict[str, torch.Tensor]:
        """The selected weights from best.pt; with several processes every rank reads the
        file rank 0 wrote (one machine or a shared file system)."""
        if self.distributed is None:
            return load_checkpoint(workdir / BEST_FILE)["model"]
        self.distributed.barrier()  # rank 0 has written its last best.pt
        state: dict[str, torch.Tensor] = load_checkpoint(workdir / BEST_FILE)["model"]
        self.distributed.barrier()  # every rank has read it before rank 0 may clear the folder
        return state

    def _train_epoch(
        self,
        model: nn.Module,
        train_set: TorchDataset,
        epoch: int,
        optimizer: torch.optim.Optimizer,
        scaler: torch.amp.GradScaler,
        bar: Progress,
    ) -> tuple[float, float]:
        model.train()
        if self.distributed is not None:  # each rank its own dropout and mixup draws
            torch.manual_seed(rank_seed(self.seed, self.epoch_offset + epoch,
                                        self.distributed.rank))
        loader = self._loader(train_set, train=True, epoch=epoch)
        global_sizes = iter(getattr(loader.batch_sampler, "global_sizes", ()))
        batch_task = bar.add_task(f"  epoch {epoch + 1}", total=len(loader))
        total_loss, correct, seen = 0.0, 0, 0
        for inputs, targets, _ in loader:
            inputs = self._to_device(inputs)
            targets = targets.to(self.device, non_blocking=True)
            with torch.autocast(self.device.type, enabled=self.amp_enabled):
                loss, logits = self._batch_loss(model, inputs, targets, epoch)
            optimizer.zero_grad(set_to_none=True)
            if self.distributed is None:
                _check_finite(loss.detach(), epoch)
                scaler.scale(loss).backward()
            else:
                self._distributed_backward(model, loss, len(targets), next(global_sizes),
                                           scaler, epoch)
            if self.config.grad_clip:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), self.config.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            if self.after_step is not None:  # e.g. NLA-SLR's EMA coupling of two classifiers
                self.after_step(model, epoch)
            total_loss += float(loss.detach()) * len(targets)
            correct += int((logits.argmax(1) == targets).sum())
            seen += len(targets)
            bar.advance(batch_task)
        bar.remove_task(batch_task)
        if self.distributed is not None:
            total_loss, correct, seen = self._epoch_totals(model, total_loss, correct, seen)
        return total_loss / max(seen, 1), correct / max(seen, 1)

    def _distributed_backward(self, model: nn.Module, loss: torch.Tensor, rank_batch: int,
                              global_batch: int, scaler: torch.amp.GradScaler,
                              epoch: int) -> None:
        """Backward of this rank's share, then every rank holds the gradient of the global
        batch's mean loss (before the scaler unscales or clips: every rank then sees the same
        gradients, so the same inf check and the same step)."""
        assert self.distributed is not None
        world = self.distributed.world_size
        scaler.scale(loss * loss_weight(rank_batch, global_batch, world)).backward()
        # The global loss travels in the same all-reduce: every rank stops on divergence.
        loss_sum = loss.detach().float().reshape(1) * rank_batch
        total = average_gradients(list(model.parameters()), world, loss_sum)
        _check_finite(total[0] / global_batch, epoch)

    def _epoch_totals(self, model: nn.Module, loss: float, correct: int, seen: int
                      ) -> tuple[float, int, int]:
        """The epoch's loss and accuracy counts over every rank (the log shows the global
        numbers), and rank 0's BatchNorm running statistics on every rank (DDP's
        broadcast_buffers; without sync_bn each rank's differ), so that every rank validates
        the same model."""
        total_loss, total_correct, total_seen = sum_over_ranks([loss, correct, seen],
                                                               self.device)
        broadcast_from_main(_synced_buffers(model))
        return total_loss, int(total_correct), int(total_seen)


    def _batch_loss(self, model: nn.Module, inputs: Any, targets: torch.Tensor,
                    epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.loss is not None:
            return self.loss(model, inputs, targets, epoch)
        logits = self.forward(model, inputs, epoch)
        smoothing = self.config.label_smoothing
        return nn.functional.cross_entropy(logits.float(), targets,
                                           label_smoothing=smoothing), logits


def _check_finite(loss: torch.Tensor, epoch: int) -> None:
    if not torch.isfinite(loss):
        raise SlrbenchError(
            f"training diverged at epoch {epoch}: loss is {float(loss)}; lower train.lr"
        )


def _synced_buffers(model: nn.Module) -> list[torch.Tensor]:
    """The buffers a distributed run keeps equal on every rank (BatchNorm running statistics
    and counters, and constants that never change)."""
    return [b for b in model.buffers() if b.is_floating_point() or b.dtype == torch.int64]


def print_line(text: str) -> None:
    """One progress line on stdout, flushed at once so logs and pipes show life."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        disable=not enabled,
        transient=False,
    )


def checkpoint_bytes(state: dict[str, Any]) -> bytes:
    """`state` as torch.save writes it (the bytes are hashed before they are stored)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def _save(path: Path, state: dict[str, Any]) -> None:
    atomic_write_bytes(path, checkpoint_bytes(state))


def load_strict(model: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Load `state` into `model` strictly, as one-line errors: every tensor of the model gets a
    value, every given tensor is used, shapes are equal."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unused = sorted(set(state) - set(expected))
    if missing or unused:
        raise SlrbenchError(
            f"{source}: {len(missing)} tensor(s) of the model without a value (e.g. "
            f"{missing[:2]}) and {len(unused)} given tensor(s) without a place (e.g. "
            f"{unused[:2]}); expected the architecture of the chosen method, preset and dataset")
    for name, tensor in state.items():
        if tuple(tensor.shape) != tuple(expected[name].shape):
            raise SlrbenchError(f"{source}: {name} has shape {tuple(tensor.shape)}; expected "
                                f"{tuple(expected[name].shape)} (another preset, layout or "
                                "number of classes?)")
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()})


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint safely: tensors and plain containers only (weights_only=True)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise SlrbenchError(f"{path}: checkpoint not found") from None
    except Exception as exc:  # corrupt or foreign file: say which one
        raise SlrbenchError(
            f"{path}: not a readable slrbench checkpoint ({type(exc).__name__})"
        ) from None


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
