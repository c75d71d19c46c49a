"""Is the difference between two leaderboard entries significant? Pairwise tests between the
leading entries of a report (docs/evaluation.md#paired-comparisons): McNemar's exact test on
top-1 hits and the paired bootstrap of ΔP-I@1, on the samples both records scored, with Holm's
correction over every pair shown.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from slrbench.marks import FLAG_NOTES, legend, record_flags
from slrbench.metrics import (
    BootstrapConfig,
    PairedComparison,
    holm_bonferroni,
    paired_bootstrap,
    topk_hits,
)
from slrbench.store.records import RunRecord

LEADING = 5  # entries compared: the five best by P-I@1 (10 pairs)
CORRECTION = "Holm-Bonferroni over all pairs shown (family-wise error 5 %)"


@dataclass(frozen=True)
class PairTest:
    a: str  # entry label, the better one by P-I@1
    b: str
    comparison: PairedComparison
    mcnemar_holm: float  # McNemar p adjusted over the family


def entry_label(record: RunRecord) -> str:
    return f"{record.method}:{record.stream}"


def top1(record: RunRecord) -> float:
    """P-I@1 of a record: stored, else computed from its scores (records may store fewer
    metrics)."""
    stored = record.metrics.get("pi@1")
    if isinstance(stored, dict) and isinstance(stored.get("value"), (int, float)):
        return float(stored["value"])
    if record.score_kind == "pred_top1":
        return float((record.scores == record.labels).mean())
    return float(topk_hits(record.scores, record.labels, 1).mean())


def leading(records: list[RunRecord], count: int = LEADING) -> list[RunRecord]:
    """The best `count` records by P-I@1 that have per-sample scores to compare."""
    scored = [r for r in records if r.score_kind != "pred_top1"]
    return sorted(scored, key=lambda r: -top1(r))[:count]


def within_one_seed(records: list[RunRecord]) -> tuple[list[RunRecord], int | None]:
    """With several seeds in the store, entries are compared within one seed: a paired test of
    two seeds of one stream says nothing about methods. The seed with the most records (the
    lowest on ties) and the records without a seed (imports); None: one seed or none."""
    counts = Counter(r.meta["seed"] for r in records if r.meta.get("seed") is not None)
    if len(counts) < 2:
        return records, None
    seed = min(counts, key=lambda s: (-counts[s], s))
    return [r for r in records if r.meta.get("seed") in (seed, None)], seed


def pairwise_tests(records: list[RunRecord], bootstrap: BootstrapConfig | None = None,
                   count: int = LEADING) -> list[PairTest]:
    """Every pair of the leading entries, better one first, joined by sample id."""
    entries = leading(records, count)
    labels = _unique_labels(entries)
    config = bootstrap or BootstrapConfig(resamples=1000, seed=0)
    raw = [(labels[i], labels[j], _compare(entries[i], entries[j], config))
           for i, j in combinations(range(len(entries)), 2)]
    adjusted = holm_bonferroni([c.mcnemar_p for _, _, c in raw])
    return [PairTest(a, b, c, p) for (a, b, c), p in zip(raw, adjusted, strict=True)]


def _unique_labels(entries: list[RunRecord]) -> list[str]:
    """`method:stream` and its marks, with the run id's tail where two entries would read alike
    (two fusions of one method with the same strategy, say)."""
    plain = [entry_label(r) for r in entries]
    labels = []
    for label, record in zip(plain, entries, strict=True):
        flags = record_flags(record.meta, record.split)  # marks follow a number everywhere
        labels.append((f"{label} ({record.run_id[-6:]})" if plain.count(label) > 1 else label)
                      + (f" {flags}" if flags else ""))
    return labels


def _compare(a: RunRecord, b: RunRecord, config: BootstrapConfig) -> PairedComparison:
    _, rows_a, rows_b = np.intersect1d(a.sample_ids, b.sample_ids, return_indices=True)
    return paired_bootstrap(a.scores[rows_a], b.scores[rows_b], a.labels[rows_a],
                            a.num_classes, a.score_kind, b.score_kind, config)


def markdown_section(tests: list[PairTest], seed: int | None = None) -> list[str]:
    if not tests:
        return []
    within = (f"Records of seed {seed} only (the store holds several seeds; pairs are compared "
              "within one seed). " if seed is not None else "")
    lines = ["", "## Significance", "",
             within + "Pairs of the leading entries (best first): ΔP-I@1 of the row entry minus "
             "the column "
             "entry with its 95 % paired-bootstrap interval, McNemar's exact p on top-1 hits and "
             f"the same p corrected by {CORRECTION}. Compared on the samples both scored.", "",
             "| A | B | n | ΔP-I@1 (A − B) | bootstrap p | McNemar b / c | McNemar p | "
             "Holm p |", "|" + " --- |" * 8]
    for test in tests:
        c = test.comparison
        delta = c.delta["pi@1"]
        lines.append(
            f"| {test.a} | {test.b} | {c.n} | {100 * delta.value:+.2f} "
            f"[{100 * (delta.ci_low or 0):+.2f}, {100 * (delta.ci_high or 0):+.2f}] | "
            f"{_bootstrap_p(c)} | {c.mcnemar_b} / {c.mcnemar_c} | {c.mcnemar_p:.3g} | "
            f"{test.mcnemar_holm:.3g}{' *' if test.mcnemar_holm < 0.05 else ''} |")
    lines += ["", "\\* significant at 5 % after the correction.", *_matrix(tests)]
    flags = "".join(ch for t in tests for ch in t.a + t.b if ch in FLAG_NOTES)
    lines += [f"- {line}" for line in legend(flags)]
    return lines


def _matrix(tests: list[PairTest]) -> list[str]:
    """The same pairs as a matrix: row minus column, ΔP-I@1 and the Holm-corrected p."""
    entries = list(dict.fromkeys([t.a for t in tests] + [t.b for t in tests]))
    cell = {(t.a, t.b): f"{100 * t.comparison.delta['pi@1'].value:+.1f} "
            f"(p {t.mcnemar_holm:.2g}{'*' if t.mcnemar_holm < 0.05 else ''})" for t in tests}
    lines = ["", "ΔP-I@1 in points, row − column, with the Holm-corrected McNemar p:", "",
             "| | " + " | ".join(entries) + " |", "|" + " --- |" * (len(entries) + 1)]
    for row in entries:
        cells = ["–" if row == col else cell.get((row, col), "") for col in entries]
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return lines


def _bootstrap_p(comparison: PairedComparison) -> str:
    """A bootstrap p of 0 means no resample crossed Δ = 0: below 2 / resamples."""
    p = comparison.p_value["pi@1"]
    return f"< {2 / comparison.bootstrap.resamples:.2g}" if p == 0 else f"{p:.3g}"
