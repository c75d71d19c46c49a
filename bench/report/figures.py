"""Report figures (matplotlib, PNG) and the confused-pairs table: accuracy with intervals, the
per-class accuracy distribution, a reliability diagram of the best entry, and the class pairs
it confuses most (docs/evaluation.md#report-figures)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from slrbench.marks import record_flags
from slrbench.metrics import to_probabilities, topk_hits
from slrbench.report.significance import entry_label, top1
from slrbench.store.records import RunRecord

CONFUSED_PAIRS = 10
RELIABILITY_BINS = 10


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def accuracy_bars(records: list[RunRecord], split: str, path: Path) -> Path:
    """P-I@1 of every entry, best first, with its 95 % interval as whiskers."""
    plt = _pyplot()
    ordered = sorted(records, key=top1)
    values = [100 * top1(r) for r in ordered]
    low = [100 * _bound(r, "ci_low") for r in ordered]
    high = [100 * _bound(r, "ci_high") for r in ordered]
    labels = [f"{entry_label(r)} {record_flags(r.meta, split)}".rstrip() for r in ordered]
    fig, ax = plt.subplots(figsize=(7, 0.32 * len(ordered) + 1.2))
    errors = np.array([np.subtract(values, low), np.subtract(high, values)])
    ax.barh(range(len(ordered)), values, xerr=errors, color="#4c72b0", ecolor="#333333",
            capsize=2)
    ax.set_yticks(range(len(ordered)), labels, fontsize=7)
    ax.set_xlabel(f"{split} P-I@1 (%) with 95 % bootstrap interval")
    ax.set_xlim(0, 100)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _bound(record: RunRecord, key: str) -> float:
    """An interval end of the stored P-I@1; the point value where no interval was computed."""
    stored = record.metrics.get("pi@1")
    value = stored.get(key) if isinstance(stored, dict) else None
    return float(value) if isinstance(value, (int, float)) else top1(record)


def per_class_distribution(records: list[RunRecord], path: Path) -> Path:
    """Per-class top-1 accuracy of each entry (box plot over the classes present)."""
    plt = _pyplot()
    ordered = sorted(records, key=top1, reverse=True)
    data = [_per_class(r) for r in ordered]
    fig, ax = plt.subplots(figsize=(7, 0.32 * len(ordered) + 1.2))
    ax.boxplot(data, orientation="horizontal", widths=0.6)
    ax.set_yticks(range(1, len(ordered) + 1), [entry_label(r) for r in ordered], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("per-class top-1 accuracy (%), one point per class present")
    ax.set_xlim(-2, 102)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _per_class(record: RunRecord) -> np.ndarray:
    hits = topk_hits(record.scores, record.labels, 1) if record.score_kind != "pred_top1" \
        else record.scores == record.labels
    classes = np.unique(record.labels)
    return np.array([100 * hits[record.labels == c].mean() for c in classes])


def reliability_diagram(record: RunRecord, path: Path) -> Path:
    """Confidence of the top class against accuracy, in equal-width bins (the best entry)."""
    plt = _pyplot()
    probs = to_probabilities(record.scores, record.score_kind)
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == record.labels
    edges = np.linspace(0, 1, RELIABILITY_BINS + 1)
    which = np.clip(np.digitize(confidence, edges) - 1, 0, RELIABILITY_BINS - 1)
    centres, accuracy, counts = [], [], []
    for b in range(RELIABILITY_BINS):
        inside = which == b
        if inside.any():
            centres.append(confidence[inside].mean())
            accuracy.append(correct[inside].mean())
            counts.append(int(inside.sum()))
    fig, ax = plt.subplots(figsize=(4.2, 4.2))
    ax.plot([0, 1], [0, 1], "--", color="#999999", label="perfectly calibrated")
    ax.plot(centres, accuracy, "o-", color="#c44e52", label=entry_label(record))
    for x, y, n in zip(centres, accuracy, counts, strict=True):
        ax.annotate(str(n), (x, y), textcoords="offset points", xytext=(3, -10), fontsize=6)
    ax.set_xlabel("confidence of the top class")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title("reliability (samples per bin beside the points)", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def minimal_pairs_figure(rows: Sequence[dict[str, Any]], kinds: Sequence[str],
                         path: Path) -> Path:
    """SynthSign: pairwise accuracy per parameter kind for every entry (0.5 = blind to it)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 0.32 * len(rows) + 1.4))
    height = 0.8 / max(len(kinds), 1)
    for k, kind in enumerate(kinds):
        values = [row.get(f"{kind}_pairwise", np.nan) for row in rows]
        ax.barh(np.arange(len(rows)) + k * height, values, height=height, label=kind)
    ax.axvline(0.5, color="#555555", lw=0.8, ls="--")
    ax.set_yticks(np.arange(len(rows)) + 0.4 - height / 2,
                  [f"{row['method']}:{row['stream']}" for row in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("minimal-pair pairwise accuracy (0.5 = cannot see the parameter)")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def confused_pairs(record: RunRecord, classes: tuple[str, ...] | None,
                   count: int = CONFUSED_PAIRS) -> list[tuple[str, str, int, int]]:
    """(true class, predicted class, errors, samples of the true class), most frequent first."""
    predicted = record.scores.argmax(axis=1) if record.score_kind != "pred_top1" \
        else record.scores
    wrong = predicted != record.labels
    pairs = Counter(zip(record.labels[wrong].tolist(), predicted[wrong].tolist()))
    support = Counter(record.labels.tolist())

    def name(k: int) -> str:
        return f"{k} {classes[k]}" if classes and k < len(classes) else str(k)

    return [(name(t), name(p), n, support[t]) for (t, p), n in pairs.most_common(count)]


def figures_section(records: list[RunRecord], split: str, dataset: str, out_dir: Path,
                    classes: tuple[str, ...] | None,
                    pair_rows: Sequence[dict[str, Any]] | None = None,
                    pair_kinds: Sequence[str] | None = None) -> tuple[list[str], list[Path]]:
    """Markdown lines (figures and the confused-pairs table) and the PNG files written."""
    if not records:
        return [], []
    best = max(records, key=top1)
    stem = f"{dataset}-{split}"
    paths = [accuracy_bars(records, split, out_dir / f"accuracy-{stem}.png"),
             per_class_distribution(records, out_dir / f"per-class-{stem}.png")]
    if best.score_kind != "pred_top1":
        paths.append(reliability_diagram(best, out_dir / f"reliability-{stem}.png"))
    if pair_rows and pair_kinds:
        paths.append(minimal_pairs_figure(pair_rows, pair_kinds,
                                          out_dir / f"minimal-pairs-{stem}.png"))
    lines = ["", "## Figures", ""]
    lines += [f"![{path.stem}]({path.name})" for path in paths]
    pairs = confused_pairs(best, classes)
    if pairs:
        lines += ["", f"### Most confused class pairs · {entry_label(best)}", "",
                  "| true class | predicted as | errors | samples of the class |",
                  "| --- | --- | --- | --- |"]
        lines += [f"| {t} | {p} | {n} | {s} |" for t, p, n, s in pairs]
    return lines, paths
