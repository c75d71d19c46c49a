"""Several processes training one stream together: `slrbench run --distributed`, launched by
torchrun (docs/distributed.md).

Each process (rank) takes its share of every global batch, the batch the single-process loader
would build; after backward the gradients are averaged over the ranks in one all-reduce, so
every rank takes the same optimiser step and the model stays identical everywhere. torch's
DistributedDataParallel wrapper is not used: its set of parameters is fixed when it is built,
while slrbench recipes unfreeze parameters between epochs and stages, and multi-stage adapters
call sub-networks directly, past the wrapper's hooks.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.autograd.function import FunctionCtx
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.data import Sampler

from slrbench.errors import SlrbenchError

# What torchrun sets in every process it starts.
TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
LAUNCH_HINT = ("torchrun --nproc_per_node N -m slrbench run --method M --dataset D "
               "--distributed")
# Rank 0 alone predicts val and test and writes the records while the other ranks wait for it
# at a broadcast: the collectives' timeout has to cover that, not just one training step.
WAIT_LIMIT = timedelta(hours=2)


@dataclass(frozen=True)
class DistContext:
    """This process's place in a torchrun launch."""

    rank: int
    world_size: int
    local_rank: int
    backend: str  # "nccl" (CUDA, device cuda:local_rank) or "gloo" (CPU)
    local_world_size: int = 1  # processes on this machine: they share its cores

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes files and prints progress."""
        return self.rank == 0

    def device(self, kind: str) -> torch.device:
        return torch.device("cuda", self.local_rank) if kind == "cuda" else torch.device("cpu")

    def barrier(self) -> None:
        if self.backend == "nccl":  # tells NCCL which device, instead of letting it guess
            dist.barrier(device_ids=[self.local_rank])
        else:
            dist.barrier()

    def provenance(self, sync_bn: bool) -> dict[str, Any]:
        """The `distributed` block of a record's `compute` (outside the config hash: the same
        recipe trained by several processes)."""
        return {"world_size": self.world_size, "backend": self.backend, "sync_bn": sync_bn}


def context_from_env(device_kind: str, env: Mapping[str, str] | None = None) -> DistContext:
    """The context torchrun's environment describes; without it, a one-line error."""
    env = os.environ if env is None else env
    missing = [name for name in TORCHRUN_ENV if name not in env]
    if missing:
        raise SlrbenchError(f"--distributed: {', '.join(missing)} not set; expected a launch "
                            f"under torchrun, e.g. `{LAUNCH_HINT}`")
    numbers = {}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        try:
            numbers[name] = int(env[name])
        except ValueError:
            raise SlrbenchError(f"--distributed: {name}={env[name]!r}; expected an integer "
                                "(as torchrun sets it)") from None
    world = numbers["WORLD_SIZE"]
    if not 0 <= numbers["RANK"] < world:
        raise SlrbenchError(f"--distributed: RANK={numbers['RANK']} with WORLD_SIZE={world}; "
                            "expected 0 <= RANK < WORLD_SIZE")
    return DistContext(rank=numbers["RANK"], world_size=world, local_rank=numbers["LOCAL_RANK"],
                       backend="nccl" if device_kind == "cuda" else "gloo",
                       local_world_size=int(env.get("LOCAL_WORLD_SIZE", world)))


@contextmanager
def process_group(context: DistContext) -> Iterator[DistContext]:
    """The default process group for the block (torchrun's MASTER_ADDR and MASTER_PORT), torn
    down afterwards, also when the block fails."""
    if context.backend == "nccl":
        torch.cuda.set_device(context.local_rank)
    dist.init_process_group(context.backend, rank=context.rank, world_size=context.world_size,
                            timeout=WAIT_LIMIT)
    try:
        yield context
    finally:
        dist.destroy_process_group()


def broadcast_object(value: Any) -> Any:
    """Rank 0's `value` on every rank (pickled; small messages only)."""
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def rank_seed(seed: int, epoch: int, rank: int) -> int:
    """A seed for torch's global generator per (seed, epoch, rank): ranks draw their dropout
    and mixup independently, and a resumed epoch draws what it drew the first time."""
    state = np.random.SeedSequence([seed, epoch, rank]).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


# ------------------------------------------------------------------------------------ batches


def global_batches(order: Sequence[int], batch_size: int, world_size: int) -> list[list[int]]:
    """`order` cut into the single-process loader's batches (drop_last=False). A final batch
    with fewer samples than ranks would leave a rank without data, so it joins the batch
    before it (one step fewer than in one process; only then)."""
    batches = [list(order[i:i + batch_size]) for i in range(0, len(order), batch_size)]
    if len(batches) > 1 and len(batches[-1]) < world_size:
        batches[-2].extend(batches.pop())
    if batches and len(batches[-1]) < world_size:
        raise SlrbenchError(f"--distributed: {len(order)} training samples for {world_size} "
                            "processes; expected at least one sample per process")
    return batches


class RankBatchSampler(Sampler[list[int]]):
    """One rank's share of the single-process loader's batches: the same permutation (drawn
    lazily from the loader's generator, after the loader's own draw, exactly as DataLoader's
    RandomSampler draws it), the same global batches, positions rank::world_size of each."""

    def __init__(self, size: int, batch_size: int, rank: int, world_size: int,
                 generator: torch.Generator) -> None:
        self.size, self.batch_size = size, batch_size
        self.rank, self.world_size = rank, world_size
        self.generator = generator
        identity = range(size)  # the sizes do not depend on the permutation
        self.global_sizes = [len(b) for b in global_batches(identity, batch_size, world_size)]

    def __iter__(self) -> Iterator[list[int]]:
        order = torch.randperm(self.size, generator=self.generator).tolist()
        for batch in global_batches(order, self.batch_size, self.world_size):
            yield batch[self.rank::self.world_size]

    def __len__(self) -> int:
        return len(self.global_sizes)


def loss_weight(rank_batch: int, global_batch: int, world_size: int) -> float:
    """Factor on a rank's mean loss so that the average of the ranks' gradients is the
    gradient of the global batch's mean loss, also when the batch splits unevenly:
    (1 / W) sum_r (n_r W / N) grad mean_r = sum_r (n_r / N) grad mean_r."""
    return rank_batch * world_size / global_batch


# ---------------------------------------------------------------------------------- gradients


def average_gradients(parameters: Sequence[nn.Parameter], world_size: int,
                      extras: torch.Tensor) -> torch.Tensor:
    """Average the gradients of the trainable `parameters` over the ranks, in one all-reduce
    per dtype (every rank's grads flattened into one buffer); returns `extras` (1-D) summed
    over the ranks in the same collective.

    A parameter without a gradient on this rank but with one elsewhere counts zero here; one
    without a gradient on every rank keeps none, so the optimiser skips it as in one process
    (weight decay and momentum included)."""
    groups: dict[torch.dtype, list[nn.Parameter]] = {}
    for p in parameters:
        if p.requires_grad:
            groups.setdefault(p.dtype, []).append(p)
    summed = extras
    for i, group in enumerate(groups.values()):
        # Appended per group: how many ranks had a gradient; to the first, the extras.
        had = torch.tensor([p.grad is not None for p in group], dtype=group[0].dtype,
                           device=group[0].device)
        tail = [had, extras.to(had)] if i == 0 else [had]
        flat = torch.cat([_flat_grad(p) for p in group] + tail)
        dist.all_reduce(flat)
        _unpack(group, flat, world_size)
        if i == 0:
            summed = flat[-len(extras):].to(extras)
    if not groups:
        summed = extras.clone()
        dist.all_reduce(summed)
    return summed


def _flat_grad(p: nn.Parameter) -> torch.Tensor:
    return p.grad.reshape(-1) if p.grad is not None else p.new_zeros(p.numel())


def _unpack(group: list[nn.Parameter], flat: torch.Tensor, world_size: int) -> None:
    sizes = [p.numel() for p in group]
    total = sum(sizes)
    had = flat[total:total + len(group)].tolist()  # ranks with a gradient, per parameter
    start = 0
    for p, size, ranks in zip(group, sizes, had):
        if ranks > 0:
            mean = flat[start:start + size].view_as(p) / world_size
            if p.grad is None:
                p.grad = mean
            else:
                p.grad.copy_(mean)
        start += size


def broadcast_from_main(tensors: Sequence[torch.Tensor]) -> None:
    """Overwrite `tensors` with rank 0's values (one broadcast per dtype and device), as DDP
    does with parameters at start and with buffers before each forward."""
    groups: dict[tuple[torch.dtype, torch.device], list[torch.Tensor]] = {}
    for t in tensors:
        groups.setdefault((t.dtype, t.device), []).append(t)
    with torch.no_grad():
        for group in groups.values():
            flat = torch.cat([t.detach().reshape(-1) for t in group])
            dist.broadcast(flat, src=0)
            start = 0
            for t in group:
                t.copy_(flat[start:start + t.numel()].view_as(t))
                start += t.numel()


def sum_over_ranks(values: Sequence[float], device: torch.device) -> list[float]:
    """Element-wise sums of `values` over the ranks (float64)."""
    tensor = torch.tensor(list(values), dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return [float(v) for v in tensor.tolist()]


# -------------------------------------------------------------------------- synchronised BN


class _SumOverRanks(torch.autograd.Function):
    """All-reduce (sum) that autograd differentiates: the gradient of each rank's input is the
    sum of the gradients of every rank's output. torch.distributed.nn.functional.all_reduce
    does the same but is deprecated with a warning per call (torch 2.13), and the functional
    collectives suggested instead do not differentiate."""

    @staticmethod
    def forward(ctx: FunctionCtx, tensor: torch.Tensor) -> torch.Tensor:
        summed = tensor.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(summed)
        return summed

    @staticmethod
    def backward(ctx: FunctionCtx, grad: torch.Tensor) -> torch.Tensor:
        return _SumOverRanks.apply(grad)


def _sum_over_ranks(tensor: torch.Tensor) -> torch.Tensor:
    result: torch.Tensor = _SumOverRanks.apply(tensor)
    return result


class CPUSyncBatchNorm(_BatchNorm):
    """BatchNorm whose training statistics are those of the whole global batch, summed over
    the ranks: on CPU, where torch's SyncBatchNorm refuses to run. Same parameters and buffers
    (so the same state_dict keys) as BatchNorm1d/2d/3d; in eval mode it is plain BatchNorm
    with the running statistics.

    Two passes, so two all-reduces per forward (and two per backward): the mean, then the mean
    squared deviation from it. One all-reduce of (sum, sum of squares, count) computes the
    variance as E[x^2] - E[x]^2, which cancels badly when the mean is large against the spread
    (measured at mean / std = 100 against BatchNorm: outputs 7e-3 off and weight gradients
    0.4, where two passes give 2e-5 and 2e-3)."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected an input of at least 2 dimensions, got {input.dim()}")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(input)
        if not self.training:  # running statistics (or, without them, this rank's batch)
            return super().forward(input)
        dims = [0, *range(2, input.dim())]
        shape = [1, -1] + [1] * (input.dim() - 2)
        local_count = input.new_tensor([input.numel() / input.shape[1]])
        totals = _sum_over_ranks(torch.cat([input.sum(dims), local_count]))
        count = totals[-1].detach()  # no gradient flows through a count
        mean = totals[:-1] / count
        centred = input - mean.view(shape)
        var = _sum_over_ranks(centred.pow(2).sum(dims)) / count  # biased, as BN normalises
        output = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            output = output * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            self._update_running_stats(mean.detach(), var.detach(), float(count))
        return output

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, var: torch.Tensor, count: float) -> None:
        # Exactly BatchNorm's rule: momentum (None: a cumulative average), unbiased variance.
        assert self.running_mean is not None and self.running_var is not None
        assert self.num_batches_tracked is not None
        self.num_batches_tracked.add_(1)
        factor = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                  else self.momentum)
        unbiased = var * (count / max(count - 1.0, 1.0))
        self.running_mean.mul_(1.0 - factor).add_(mean, alpha=factor)
        self.running_var.mul_(1.0 - factor).add_(unbiased, alpha=factor)


def sync_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """`model` with every BatchNorm synchronised over the ranks: torch's SyncBatchNorm on
    CUDA, `CPUSyncBatchNorm` on CPU. Parameters and buffers are the same tensors, so an
    optimiser built afterwards and every checkpoint see no difference."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return _convert_cpu(model)


def _convert_cpu(module: nn.Module) -> nn.Module:
    if isinstance(module, _BatchNorm) and not isinstance(module, (CPUSyncBatchNorm,
                                                                  nn.SyncBatchNorm)):
        synced = CPUSyncBatchNorm(module.num_features, module.eps, module.momentum,
                                  module.affine, module.track_running_stats)
        if module.affine:
            synced.weight, synced.bias = module.weight, module.bias
        if module.track_running_stats:
            synced.running_mean, synced.running_var = module.running_mean, module.running_var
            synced.num_batches_tracked = module.num_batches_tracked
        synced.train(module.training)
        return synced
    for name, child in module.named_children():
        converted = _convert_cpu(child)
        if converted is not child:
            module.add_module(name, converted)
    return module

