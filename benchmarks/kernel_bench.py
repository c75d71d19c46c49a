"""How close the skeleton models' dominant kernels are to what this CPU can do: the temporal
convolution, the 1x1 convolution and training-mode BatchNorm of SL-GCN's paper preset, each
forward + backward, against the other ways of computing the same function in PyTorch.

This is why the native models cannot be made much faster than the reference on CPU
(docs/PERFORMANCE.md#kernels): both already run these kernels, and they are most of a step.
Writes its section of docs/PERFORMANCE.md.

    python benchmarks/kernel_bench.py --repeats 7
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from performance_doc import load_average, machine, publish  # benchmarks/ is on sys.path
from torch import Tensor

BATCH, JOINTS, KERNEL = 16, 27, 9
# (channels, frames) of SL-GCN paper blocks: 64 at T 100, 128 at T 50, 256 at T 25.
SHAPES = ((64, 100), (128, 50), (256, 25))


def timed_median(step: Callable[[], None], repeats: int) -> float:
    for _ in range(2):
        step()
    seconds = []
    for _ in range(repeats):
        tic = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - tic)
    return statistics.median(seconds)


def backward(y: Tensor) -> None:
    y.sum().backward()


def temporal_variants(c: int, t: int) -> dict[str, Callable[[], None]]:
    """(9, 1) temporal convolution with bias, forward + backward."""
    x = torch.randn(BATCH, c, t, JOINTS, requires_grad=True)
    x_last = x.detach().to(memory_format=torch.channels_last).requires_grad_()
    w = torch.randn(c, c, KERNEL, 1, requires_grad=True)
    b = torch.randn(c, requires_grad=True)
    pad = (KERNEL - 1) // 2

    def as_conv1d() -> None:
        rows = x.permute(0, 3, 1, 2).reshape(BATCH * JOINTS, c, t)
        y = F.conv1d(rows, w.squeeze(-1), b, padding=pad)
        backward(y.view(BATCH, JOINTS, c, t).permute(0, 2, 3, 1))

    def as_shifted_matmuls() -> None:
        padded = F.pad(x, (0, 0, pad, pad))
        taps = torch.stack([padded[:, :, k:k + t] for k in range(KERNEL)], dim=-1)
        backward(torch.einsum("nctvk,ock->notv", taps, w.squeeze(-1)) + b.view(1, -1, 1, 1))

    return {
        "conv2d, NCHW (what both models run)":
            lambda: backward(F.conv2d(x, w, b, padding=(pad, 0))),
        "conv2d, channels_last": lambda: backward(F.conv2d(x_last, w, b, padding=(pad, 0))),
        "conv1d over (N V, C, T)": as_conv1d,
        "9 shifted matmuls (einsum)": as_shifted_matmuls,
    }


def pointwise_variants(c: int, t: int) -> dict[str, Callable[[], None]]:
    """The GCN's C -> 3 C 1x1 convolution with bias, forward + backward."""
    x = torch.randn(BATCH, c, t, JOINTS, requires_grad=True)
    w = torch.randn(3 * c, c, 1, 1, requires_grad=True)
    b = torch.randn(3 * c, requires_grad=True)
    return {
        "conv2d 1x1 (what both models run)": lambda: backward(F.conv2d(x, w, b)),
        "matmul over (C, T V)": lambda: backward(
            torch.matmul(w.view(3 * c, c), x.view(BATCH, c, t * JOINTS)) + b.view(1, -1, 1)),
    }


def batch_norm_variants(c: int, t: int) -> dict[str, Callable[[], None]]:
    """Training-mode BatchNorm2d over the GCN's 3 C channels, forward + backward."""
    x = torch.randn(BATCH, 3 * c, t, JOINTS, requires_grad=True)
    x_last = x.detach().to(memory_format=torch.channels_last).requires_grad_()
    gamma = torch.ones(3 * c, requires_grad=True)
    beta = torch.zeros(3 * c, requires_grad=True)
    mean, var = torch.zeros(3 * c), torch.ones(3 * c)

    def native(inp: Tensor) -> None:
        backward(F.batch_norm(inp, mean, var, gamma, beta, True, 0.1, 1e-5))

    def composed() -> None:
        v, m = torch.var_mean(x, dim=(0, 2, 3), keepdim=True, correction=0)
        scale = gamma.view(1, -1, 1, 1) * torch.rsqrt(v + 1e-5)
        backward(x * scale + (beta.view(1, -1, 1, 1) - m * scale))

    return {
        "F.batch_norm, NCHW (what both models run)": lambda: native(x),
        "F.batch_norm, channels_last": lambda: native(x_last),
        "var_mean + affine": composed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    load_before = load_average()
    rows = []
    for family, variants in (("temporal conv (9, 1)", temporal_variants),
                             ("1x1 conv C -> 3C", pointwise_variants),
                             ("BatchNorm (3C channels)", batch_norm_variants)):
        for c, t in SHAPES:
            cases = variants(c, t)
            times = {name: timed_median(step, args.repeats) for name, step in cases.items()}
            first = next(iter(times.values()))
            for name, seconds in times.items():
                rows.append(f"| {family} | C {c}, T {t} | {name} | {1e3 * seconds:.1f} ms | "
                            f"{seconds / first:.2f} |")
            print(rows[-len(times):], flush=True)
    temporal_flops = 3 * 2 * BATCH * 64 * 64 * KERNEL * 100 * JOINTS  # forward + 2 backward GEMMs
    lines = [
        "## Kernels",
        "",
        f"Generated by `python benchmarks/kernel_bench.py --repeats {args.repeats}` (rerun it to "
        "refresh this section).",
        "",
        f"* Machine: {machine()}, torch {torch.__version__}; 1 torch thread; load (1-min "
        f"average) before {load_before:.2f}, after {load_average():.2f}.",
        f"* Batch {BATCH}, {JOINTS} joints, shapes of SL-GCN's paper blocks; each figure is the "
        f"median of {args.repeats} forward + backward passes.",
        "",
        "| kernel | shape | implementation | time | relative to the first |",
        "| --- | --- | --- | --- | --- |",
        *rows,
        "",
        "The first row of each group is what both the native models and the reference run. "
        f"The first temporal convolution is {temporal_flops / 1e9:.1f} GFLOP forward and "
        "backward, so its time gives the rate this core reaches on it.",
    ]
    publish("kernel_bench", lines, write=not args.no_write)


if __name__ == "__main__":
    main()
