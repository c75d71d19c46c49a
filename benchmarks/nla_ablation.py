"""NLA-SLR's ablation on SynthSign (docs/methods/nla.md#ablation-on-synthsign): the full model,
without language-aware label smoothing (plain smoothing with the same ε instead), without
inter-modality mixup (and so without its EMA coupling), and without both; each trained with
the same seed, scored on the test split over all classes and over the classes whose glosses are
semantically paired (a minimal-pair partner from the same semantic cluster), and compared with
the full model by paired bootstrap and McNemar. Writes the section of docs/methods/nla.md.

    python benchmarks/nla_ablation.py --dataset synthsign-tiny --seed 0 --jobs 2 --threads 1
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from performance_doc import load_average, machine, publish  # benchmarks/ is on sys.path

from slrbench.datasets.registry import load_dataset
from slrbench.methods.registry import get_method
from slrbench.metrics import BootstrapConfig, MetricValue, evaluate, paired_bootstrap
from slrbench.report.minimal_pairs import minimal_pair_accuracy
from slrbench.store import RecordStore
from slrbench.store.records import RunRecord
from slrbench.training import RunRequest, run_all

NLA_CARD = Path(__file__).resolve().parents[1] / "docs" / "methods" / "nla.md"
VARIANTS: dict[str, dict[str, Any]] = {
    "full (LALS + IMM)": {},
    "without LALS": {"language.label_smoothing": "uniform"},
    "without IMM": {"language.imm": False},
    "without both": {"language.label_smoothing": "uniform", "language.imm": False},
}
HEADS = ("ensemble_last", "fuse")


def semantic_pairs(dataset: Any) -> list[tuple[int, int, str]]:
    """SynthSign's minimal pairs whose two glosses come from one semantic cluster."""
    classes = dataset.classes
    return [(a, b, "semantic") for a, b, _ in dataset.minimal_pairs
            if classes[a].cluster == classes[b].cluster]


def train_variants(dataset: Any, seed: int, jobs: int, threads: int, root: Path
                   ) -> tuple[dict[str, dict[str, RunRecord]], bool]:
    """Every variant trained into one store (or found there: a store given with --results
    is reused); test records per variant and head."""
    store = RecordStore(root)
    requests = [RunRequest(method=get_method("nla"), dataset=dataset, preset="tiny",
                           streams=("vknet",), seed=seed, overrides=overrides, progress=False,
                           bootstrap=None) for overrides in VARIANTS.values()]
    outcomes = run_all(requests, store, jobs=jobs, threads=threads)
    trained = any(o.status != "skipped" for outs in outcomes for o in outs)
    return {name: {o.stream: store.load(o.run_ids["test"]) for o in outs}
            for name, outs in zip(VARIANTS, outcomes)}, trained


def interval(value: MetricValue, signed: bool = False) -> str:
    """A value with its 95 % interval, in percentage points."""
    form = "{:+.1f}" if signed else "{:.1f}"
    low, high = value.ci_low, value.ci_high
    if low is None or high is None:
        return form.format(100 * value.value)
    return (f"{form.format(100 * value.value)} [{form.format(100 * low)}, "
            f"{form.format(100 * high)}]")


def cell(scores: np.ndarray, labels: np.ndarray, k: int, boot: BootstrapConfig) -> str:
    return interval(evaluate(scores, labels, k, ks=(1,), bootstrap=boot).metrics["pi@1"])


def delta_cell(scores: np.ndarray, full: np.ndarray, labels: np.ndarray, k: int,
               boot: BootstrapConfig) -> str:
    comparison = paired_bootstrap(scores, full, labels, k, bootstrap=boot)
    return (f"{interval(comparison.delta['pi@1'], signed=True)}, p = "
            f"{comparison.p_value['pi@1']:.2f} (McNemar {comparison.mcnemar_p:.2f})")


def table(records: dict[str, dict[str, RunRecord]], head: str,
          pairs: list[tuple[int, int, str]], boot: BootstrapConfig) -> list[str]:
    """One row per variant: all classes, the semantically paired classes (when they are not
    all of them) with their deltas, and two-way accuracy inside the semantic minimal pairs."""
    full = records[next(iter(VARIANTS))][head]
    labels, k = full.labels, full.scores.shape[1]
    subset = np.isin(labels, sorted({c for a, b, _ in pairs for c in (a, b)}))
    split = not subset.all()
    columns = ["variant", "all classes: P-I@1 [95 % CI]", "Δ vs full"]
    if split:
        columns += ["semantically paired classes: P-I@1", "Δ vs full"]
    columns += ["semantic minimal pairs: two-way accuracy", "partner chosen"]
    lines = [f"`{head}`:", "", "| " + " | ".join(columns) + " |",
             "| " + " | ".join("---" for _ in columns) + " |"]
    for name in VARIANTS:
        record = records[name][head]
        if not np.array_equal(record.sample_ids, full.sample_ids):
            raise SystemExit(f"{name}: test ids differ from the full model's")
        scores = record.scores
        row = [name, cell(scores, labels, k, boot),
               "–" if record is full else delta_cell(scores, full.scores, labels, k, boot)]
        if split:
            row += [cell(scores[subset], labels[subset], k, boot),
                    "–" if record is full else delta_cell(scores[subset], full.scores[subset],
                                                          labels[subset], k, boot)]
        within = minimal_pair_accuracy(scores, labels, pairs, "semantic")
        row += [f"{100 * within.pairwise:.1f} ({within.comparisons} comparisons)",
                f"{100 * within.partner_confusion:.1f} %"]
        lines.append("| " + " | ".join(row) + " |")
    return lines + [""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="synthsign-tiny")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--results", type=Path, default=None,
                        help="store to train into (default: a temporary folder)")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dataset = load_dataset(args.dataset)
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="slrbench-nla-ablation-") as tmp:
        records, trained = train_variants(dataset, args.seed, args.jobs, args.threads,
                                       args.results or Path(tmp))
    load_after = load_average()
    pairs = semantic_pairs(dataset)
    paired = {c for a, b, _ in pairs for c in (a, b)}
    boot = BootstrapConfig()
    command = (f"python benchmarks/nla_ablation.py --dataset {args.dataset} --seed {args.seed} "
               f"--jobs {args.jobs} --threads {args.threads}")
    lines = [
        f"### Ablation on {args.dataset}", "",
        f"Generated by `{command}` (rerun it to refresh this section).", "",
        f"* Machine: {machine()}, torch {torch.__version__}; {args.jobs} worker(s) x "
        f"{args.threads} torch thread(s); load (1-min average) before {load_before:.2f}, after "
        f"{load_after:.2f}"
        + ("" if trained else " (records found in the --results store: the trainings ran "
           "earlier)")
        + "; training seconds per variant (from the records): "
        + ", ".join(f"{records[name][HEADS[0]].meta['timings']['train_s']:.0f}"
                    for name in VARIANTS) + ".",
        f"* Tiny preset, seed {args.seed}, one training per variant; test split, checkpoint "
        "selected on val. Without LALS: plain label smoothing with the same ε; without IMM: no "
        "inter-modality mixup loss and no EMA coupling (input mixup stays on in every "
        "variant).",
        f"* Semantically paired classes: {len(paired)} of {dataset.spec.num_classes} have a "
        f"minimal-pair partner from the same semantic cluster ({len(pairs)} such pairs)"
        + ("; here that is every class, so the all-classes columns cover them." if len(paired)
           == dataset.spec.num_classes else ".")
        + " Two-way accuracy: how often the true class scores above its semantic minimal-pair "
        "partner; partner chosen: how often the prediction is that partner.",
        f"* Δ: P-I@1 of the variant minus the full model's, paired bootstrap ({boot.resamples} "
        "resamples) with its 95 % interval and two-sided p, and McNemar's exact p.", "",
    ]
    for head in HEADS:
        lines += table(records, head, pairs, boot)
    publish("nla_ablation", lines, write=False)
    if not args.no_write:
        from performance_doc import write_section

        print(f"wrote {write_section('nla_ablation', chr(10).join(lines), NLA_CARD)}")


if __name__ == "__main__":
    main()
