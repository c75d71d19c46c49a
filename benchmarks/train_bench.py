"""Training and inference speed of the native SL-GCN, DSTA-SLR and LGF-SLR hand-stream models
against straightforward reference implementations of the same layers
(`benchmarks/reference_models.py`), measured in the same run. Writes its section of
docs/PERFORMANCE.md.

    python benchmarks/train_bench.py                         # 5 repeats, 1 thread, every case
    python benchmarks/train_bench.py --threads 1,2 --profile
    python benchmarks/train_bench.py --cases slgcn-tiny,dsta-tiny --repeats 3 --no-write

One training step is forward (drops active, keep_prob 0.9) + cross-entropy + backward + SGD
step (momentum 0.9); inference is one eval-mode forward under ``torch.inference_mode``. The
reference gets the native model's weights, so both do the same work on the same numbers; their
outputs are compared before timing. Per model and thread count: ``--warmup`` untimed steps, then
``--repeats`` timed ones, alternating which model goes first; the figure is the median.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import torch
from torch import Tensor, nn

from slrbench.methods.dsta import DSTA
from slrbench.methods.dsta import PRESETS as DSTA_PRESETS
from slrbench.methods.slgcn import PRESETS as SLGCN_PRESETS
from slrbench.methods.slgcn import SLGCN

sys.path.insert(0, str(Path(__file__).resolve().parent))
from performance_doc import load_average, machine, write_section

BATCH = 16
KEEP_PROB = 0.9  # the drops' keep probability once the schedule has decayed
TARGET = 1.5  # training speed-up over the reference asked of the paper presets
# (family, preset, layout, classes, training frames, evaluation frames)
CASES: dict[str, tuple[str, str, str, int, int, int]] = {
    "slgcn-tiny": ("slgcn", "tiny", "samslr_27", 20, 32, 32),
    "slgcn-paper": ("slgcn", "paper", "samslr_27", 226, 100, 150),
    "dsta-tiny": ("dsta", "tiny", "samslr_27", 20, 32, 32),
    "dsta-paper": ("dsta", "paper", "samslr_27", 226, 100, 150),
    "lgf-hand10-tiny": ("slgcn", "tiny", "hand10_left", 20, 32, 32),
    "lgf-hand10-paper": ("slgcn", "paper", "hand10_left", 226, 100, 150),
}
TITLES = {"slgcn": "SL-GCN", "dsta": "DSTA-SLR"}


def load_reference() -> ModuleType:
    path = Path(__file__).resolve().parent / "reference_models.py"
    spec = importlib.util.spec_from_file_location("reference_models", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_pair(case: str, reference: ModuleType) -> tuple[nn.Module, nn.Module]:
    """The native model (seed 0) and the reference with the native weights."""
    family, preset, layout, classes, _, _ = CASES[case]
    torch.manual_seed(0)
    native: nn.Module
    if family == "dsta":
        native = DSTA(classes, layout, DSTA_PRESETS[preset])
        ref = reference.ReferenceDSTA(classes, layout, DSTA_PRESETS[preset])
    else:
        native = SLGCN(classes, layout, SLGCN_PRESETS[preset])
        ref = reference.ReferenceSLGCN(classes, layout, SLGCN_PRESETS[preset])
    ref.load_state_dict(native.state_dict())
    return native, ref


@dataclass
class Timing:
    train: list[float] = field(default_factory=list)
    infer: list[float] = field(default_factory=list)


@dataclass
class CaseResult:
    case: str
    threads: int
    native: Timing
    reference: Timing
    agreement: float  # max |native - reference| / max |native| of eval-mode logits
    nodes: int = 0


def inputs(case: str) -> tuple[Tensor, Tensor, Tensor]:
    _, _, layout, classes, t_train, t_eval = CASES[case]
    nodes = 10 if layout.startswith("hand10") else 27
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(BATCH, 3, t_train, nodes, 1, generator=gen)
    x_eval = torch.randn(BATCH, 3, t_eval, nodes, 1, generator=gen)
    labels = torch.randint(0, classes, (BATCH,), generator=gen)
    return x, x_eval, labels


def step_functions(model: nn.Module, x: Tensor, x_eval: Tensor,
                   labels: Tensor) -> tuple[Callable[[], None], Callable[[], None]]:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)

    def train() -> None:
        model.train()
        optimizer.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x, KEEP_PROB), labels).backward()
        optimizer.step()

    def infer() -> None:
        model.eval()
        with torch.inference_mode():
            model(x_eval)

    return train, infer


def timed(fn: Callable[[], None]) -> float:
    tic = time.perf_counter()
    fn()
    return time.perf_counter() - tic


def run_case(case: str, threads: int, repeats: int, warmup: int,
             reference: ModuleType) -> CaseResult:
    torch.set_num_threads(threads)
    native, ref = build_pair(case, reference)
    x, x_eval, labels = inputs(case)
    with torch.inference_mode():
        a, b = native.eval()(x_eval), ref.eval()(x_eval)
    agreement = ((a - b).abs().max() / a.abs().max()).item()
    fns = {"native": step_functions(native, x, x_eval, labels),
           "reference": step_functions(ref, x, x_eval, labels)}
    timings = {"native": Timing(), "reference": Timing()}
    for kind in (0, 1):  # train, then inference
        for name in fns:
            for _ in range(warmup):
                fns[name][kind]()
        for repeat in range(repeats):
            order = list(fns) if repeat % 2 == 0 else list(reversed(fns))
            for name in order:
                seconds = timed(fns[name][kind])
                (timings[name].train if kind == 0 else timings[name].infer).append(seconds)
    return CaseResult(case, threads, timings["native"], timings["reference"], agreement,
                      nodes=x.shape[3])


def profile_native(case: str, threads: int, top: int = 8) -> list[tuple[str, float]]:
    """Op-level self-time shares of one native training step (after one warm-up step)."""
    from torch.profiler import ProfilerActivity, profile

    torch.set_num_threads(threads)
    native, _ = build_pair(case, load_reference())
    x, x_eval, labels = inputs(case)
    train, _ = step_functions(native, x, x_eval, labels)
    train()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        train()
    events = [(e.key, e.self_cpu_time_total) for e in prof.key_averages()]
    total = sum(t for _, t in events)
    events.sort(key=lambda e: -e[1])
    return [(key, t / total) for key, t in events[:top]]


def per_second(seconds: list[float]) -> float:
    return BATCH / statistics.median(seconds)


def table(results: list[CaseResult]) -> list[str]:
    rows = [
        "| model | preset | input (N, C, T train / eval, V) | threads | training, native | "
        "training, reference | **native / reference** | inference, native | "
        "inference, reference | **native / reference** |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        family, preset, layout, _, t_train, t_eval = CASES[r.case]
        name = "LGF-SLR hand stream (`hand10_left`)" if layout.startswith("hand") else (
            TITLES[family])
        train_n, train_r = per_second(r.native.train), per_second(r.reference.train)
        infer_n, infer_r = per_second(r.native.infer), per_second(r.reference.infer)
        rows.append(
            f"| {name} | {preset} | ({BATCH}, 3, {t_train} / {t_eval}, {r.nodes}) | {r.threads} | "
            f"{train_n:.1f} | {train_r:.1f} | **{train_n / train_r:.2f}x** | "
            f"{infer_n:.1f} | {infer_r:.1f} | **{infer_n / infer_r:.2f}x** |"
        )
    return rows


def runs_table(results: list[CaseResult]) -> list[str]:
    rows = ["| case | threads | training step, native / reference (s) | "
            "inference, native / reference (s) |", "| --- | --- | --- | --- |"]
    fmt = lambda xs: ", ".join(f"{t:.3f}" for t in xs)  # noqa: E731
    for r in results:
        rows.append(f"| {r.case} | {r.threads} | {fmt(r.native.train)} / {fmt(r.reference.train)} "
                    f"| {fmt(r.native.infer)} / {fmt(r.reference.infer)} |")
    return rows


def target_lines(results: list[CaseResult],
                 profiles: dict[tuple[str, int], list[tuple[str, float]]]) -> list[str]:
    """The target: paper-preset SL-GCN and DSTA-SLR training at least 1.5x the reference on one
    thread; with the profile, the share of the step both implementations spend identically."""
    one = {r.case: r for r in results if r.threads == 1}
    cases = [c for c in ("slgcn-paper", "dsta-paper") if c in one]
    if not cases:
        return []
    ratios = {c: per_second(one[c].native.train) / per_second(one[c].reference.train)
              for c in cases}
    met = "met" if all(v >= TARGET for v in ratios.values()) else "**not met**"
    lines = [f"Target: paper-preset SL-GCN and DSTA-SLR training steps at least {TARGET}x the "
             f"reference on 1 thread: {met} ("
             + ", ".join(f"{c} {v:.2f}x" for c, v in ratios.items()) + ")."]
    conv = {c: sum(s for key, s in profiles[(c, 1)] if "convolution" in key)
            for c in cases if (c, 1) in profiles}
    if conv:
        lines[0] += (" Convolutions (forward and backward) take "
                     + ", ".join(f"{100 * s:.0f} % ({c})" for c, s in conv.items())
                     + " of a native step; both implementations run them with the same kernels "
                     "on the same shapes, so only the rest of the step can differ.")
    return [*lines, ""]


def render(results: list[CaseResult], profiles: dict[tuple[str, int], list[tuple[str, float]]],
           command: str, repeats: int, warmup: int, load_before: float,
           load_after: float) -> str:
    worst = max(r.agreement for r in results)
    lines = [
        "## Training and inference of the skeleton models (`benchmarks/train_bench.py`)",
        "",
        f"Generated by `{command}` (rerun it to refresh this section).",
        "",
        f"* Machine: {machine()}, torch {torch.__version__} "
        f"({torch.backends.cpu.get_cpu_capability()}).",
        f"* Threads: torch intra-op threads as in the table (`torch.set_num_threads`), "
        f"inter-op {torch.get_num_interop_threads()}.",
        f"* Load (1-min average): {load_before:.2f} before, {load_after:.2f} after; the benchmark "
        "itself keeps one core busy per thread." + (
            "" if load_before < 1.0 else
            " **Caveat:** other work was running, so absolute figures are low; native and "
            "reference alternate within the same run, so their ratio is the reliable figure."),
        f"* Samples per second = batch {BATCH} / median of {repeats} timed steps after {warmup} "
        "warm-up step(s) per model, alternating which model runs first. Training step: forward "
        f"with drops active (keep_prob {KEEP_PROB}), cross-entropy, backward, SGD step. "
        "Inference: eval mode, `torch.inference_mode`.",
        "* Reference: `benchmarks/reference_models.py`, plain PyTorch with the same layers and "
        "the native weights (DecoupleA tiled to one matrix per channel and one joint mixing per "
        "subset, per-head loops for DSTA's joint attention, one STC gate after the other, "
        "DropGraph and DropBlockT as separate steps). Eval-mode logits agree to "
        f"{worst:.1e} (max relative deviation over the cases).",
        "",
        *table(results),
        "",
        *target_lines(results, profiles),
    ]
    if profiles:
        lines += ["Where a native training step spends its time (op self time, one step after a "
                  "warm-up, `torch.profiler`):", "",
                  "| case | threads | top ops (share of the step) |", "| --- | --- | --- |"]
        for (case, threads), ops in profiles.items():
            shares = ", ".join(f"`{key.removeprefix('aten::')}` {100 * s:.0f} %" for key, s in ops)
            lines.append(f"| {case} | {threads} | {shares} |")
        lines.append("")
    lines += ["All timed runs:", "", *runs_table(results), ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", default="1", help="comma-separated torch thread counts")
    parser.add_argument("--cases", default=",".join(CASES), help=", ".join(CASES))
    parser.add_argument("--profile", action="store_true",
                        help="also record the top ops of one native paper-preset training step")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    cases = [c for c in args.cases.split(",") if c]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        parser.error(f"--cases: unknown {', '.join(unknown)}; expected some of {', '.join(CASES)}")
    thread_counts = [int(t) for t in args.threads.split(",")]
    reference = load_reference()
    load_before = load_average()
    print(f"machine: {machine()}, torch {torch.__version__}, load {load_before:.2f}", flush=True)
    results: list[CaseResult] = []
    profiles: dict[tuple[str, int], list[tuple[str, float]]] = {}
    for threads in thread_counts:
        for case in cases:
            r = run_case(case, threads, args.repeats, args.warmup, reference)
            results.append(r)
            print(f"{case} threads={threads}: training {per_second(r.native.train):.1f} vs "
                  f"{per_second(r.reference.train):.1f} samples/s "
                  f"({per_second(r.native.train) / per_second(r.reference.train):.2f}x), "
                  f"inference {per_second(r.native.infer):.1f} vs "
                  f"{per_second(r.reference.infer):.1f} "
                  f"({per_second(r.native.infer) / per_second(r.reference.infer):.2f}x), "
                  f"logits agree to {r.agreement:.1e}", flush=True)
            if args.profile and case.endswith("paper"):
                profiles[(case, threads)] = profile_native(case, threads)
    load_after = load_average()
    command = " ".join(["python", "benchmarks/train_bench.py", *sys.argv[1:]])
    text = render(results, profiles, command, args.repeats, args.warmup, load_before, load_after)
    print(text)
    if not args.no_write:
        print(f"wrote {write_section('train_bench', text)}")


if __name__ == "__main__":
    main()
