"""Accuracy on minimal pairs: classes that differ in exactly one phonological parameter
(SynthSign records them with their kind: "handshape", "location", "movement").

For the pairs of one kind, over the evaluated samples whose true class belongs to such a pair:

* ``top1``: ordinary K-way top-1 accuracy (pessimistic ties, docs/evaluation.md#tie-rule);
* ``pairwise``: two-way discrimination inside each pair, one item per (sample, pair its class
  belongs to); correct when the true class scores strictly higher than the partner (a tie
  counts against, as for top-1);
* ``partner_confusion``: share of the samples whose top-1 prediction is one of the class's
  partners of this kind (the errors the parameter is responsible for).

``pairwise`` isolates the parameter: a stream that cannot see handshape is at 0.5 on handshape
pairs whatever its K-way accuracy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from slrbench.errors import SlrbenchError
from slrbench.marks import record_stream_label
from slrbench.metrics import topk_hits
from slrbench.report.cells import shown
from slrbench.store.records import RunRecord

Pair = tuple[int, int, str]


@dataclass(frozen=True)
class PairAccuracy:
    kind: str
    pairs: int
    classes: int
    samples: int  # samples whose class is in a pair of this kind
    comparisons: int  # (sample, pair) items behind `pairwise`
    top1: float
    pairwise: float
    partner_confusion: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def pair_kinds(pairs: Iterable[Pair]) -> tuple[str, ...]:
    """The kinds present, in first-seen order."""
    return tuple(dict.fromkeys(kind for *_, kind in pairs))


def minimal_pair_accuracy(
    scores: np.ndarray, labels: np.ndarray, pairs: Sequence[Pair], kind: str
) -> PairAccuracy:
    """`PairAccuracy` of scores (N, K) against labels (N,) on the pairs of ``kind``."""
    scores, labels = np.asarray(scores), np.asarray(labels, dtype=np.int64)
    hits = topk_hits(scores, labels, 1)  # validates shapes, labels and finiteness
    chosen = [(int(a), int(b)) for a, b, k in pairs if k == kind]
    if not chosen:
        raise SlrbenchError(
            f"minimal pairs: found no pair of kind '{kind}'; expected one of "
            f"{', '.join(pair_kinds(pairs)) or 'any kind (the pair list is empty)'}"
        )
    k = scores.shape[1]
    partners: dict[int, set[int]] = {}
    for a, b in chosen:
        if not (0 <= a < k and 0 <= b < k) or a == b:
            raise SlrbenchError(
                f"minimal pair ({a}, {b}): expected two distinct classes in 0..{k - 1}"
            )
        partners.setdefault(a, set()).add(b)
        partners.setdefault(b, set()).add(a)
    in_pair = np.isin(labels, list(partners))
    if not in_pair.any():
        raise SlrbenchError(
            f"minimal pairs '{kind}': found no sample of classes {sorted(partners)}; expected "
            "at least one evaluated sample in a pair"
        )
    pred = scores.argmax(axis=1)
    wins, confused = [], []
    for i in np.flatnonzero(in_pair):
        mates = sorted(partners[int(labels[i])])
        wins.extend(scores[i, labels[i]] > scores[i, mates])
        confused.append(not hits[i] and int(pred[i]) in mates)
    return PairAccuracy(
        kind=kind,
        pairs=len(chosen),
        classes=len(partners),
        samples=int(in_pair.sum()),
        comparisons=len(wins),
        top1=float(hits[in_pair].mean()),
        pairwise=float(np.mean(wins)),
        partner_confusion=float(np.mean(confused)),
    )


def minimal_pair_table(
    scores: np.ndarray, labels: np.ndarray, pairs: Sequence[Pair]
) -> dict[str, PairAccuracy]:
    """`minimal_pair_accuracy` for every kind present in ``pairs``."""
    return {kind: minimal_pair_accuracy(scores, labels, pairs, kind) for kind in pair_kinds(pairs)}


def record_minimal_pairs(record: RunRecord, pairs: Sequence[Pair]) -> dict[str, PairAccuracy]:
    """`minimal_pair_table` of a stored record (logits or probabilities; argmax and pairwise
    order are the same in either space)."""
    if record.score_kind == "pred_top1":
        raise SlrbenchError(
            f"record {record.run_id}: score_kind 'pred_top1'; expected class scores "
            "(pairwise accuracy needs a score per class)"
        )
    return minimal_pair_table(record.scores, record.labels, pairs)


def dataset_minimal_pairs(dataset: str) -> tuple[list[Pair], int]:
    """The minimal pairs a dataset declares (SynthSign) and its class count; no pairs for real
    datasets or a user's own."""
    from slrbench.datasets.registry import REGISTRY, load_dataset
    from slrbench.datasets.synthsign import SynthSign

    entry = REGISTRY.get(dataset)
    if entry is None or not entry.synthetic:
        return [], 0
    loaded = load_dataset(dataset)
    assert isinstance(loaded, SynthSign)  # load_dataset builds SynthSign for synthetic entries
    return list(getattr(loaded, "minimal_pairs", [])), len(loaded.classes)


def minimal_pairs_rows(records: Iterable[RunRecord], pairs: Sequence[Pair],
                       num_classes: int) -> list[dict[str, Any]]:
    """One row per record of the dataset's class set: pairwise accuracy and partner confusion
    for each pair kind (records without per-class scores are skipped)."""
    rows = []
    for record in records:
        if record.score_kind == "pred_top1" or record.scores.shape[1] != num_classes:
            continue
        row: dict[str, Any] = {"method": record.meta["method"],
                               "stream": record_stream_label(record.meta),
                               "seed": record.meta["seed"]}
        for kind, result in minimal_pair_table(record.scores, record.labels, pairs).items():
            row[f"{kind}_pairwise"] = result.pairwise
            row[f"{kind}_partner_confusion"] = result.partner_confusion
            row[f"{kind}_samples"] = result.samples
        rows.append(row)
    return rows


def minimal_pairs_rich(rows: Sequence[dict[str, Any]], pairs: Sequence[Pair]) -> Any:
    """Compact terminal table: pairwise accuracy per kind."""
    from rich.table import Table

    kinds = pair_kinds(pairs)
    table = Table(title="minimal pairs: pairwise accuracy (0.5 = blind to the parameter)")
    for column in ("method", "stream", *kinds):
        table.add_column(column)
    for row in rows:
        table.add_row(row["method"], row["stream"],
                      *(f"{row.get(f'{kind}_pairwise', float('nan')):.3f}" for kind in kinds))
    return table


def minimal_pairs_markdown(rows: Sequence[dict[str, Any]], pairs: Sequence[Pair]) -> list[str]:
    if not rows:
        return []
    kinds = pair_kinds(pairs)
    counts = ", ".join(f"{sum(1 for *_, k in pairs if k == kind)} {kind}" for kind in kinds)
    lines = ["", "## Minimal pairs", "",
             f"Classes that differ in exactly one phonological parameter ({counts} pairs). "
             "*pairwise*: the true class scores above its partner (0.5 = the stream cannot see "
             "the parameter); *confusion*: share of samples predicted as a partner.", "",
             "| method | stream | seed | " + " | ".join(
                 f"{kind} pairwise | {kind} confusion" for kind in kinds) + " |",
             "|" + " --- |" * (3 + 2 * len(kinds))]
    for row in rows:
        cells = [f"{row.get(f'{kind}_pairwise', float('nan')):.3f} | "
                 f"{row.get(f'{kind}_partner_confusion', float('nan')):.3f}" for kind in kinds]
        lines.append(f"| {row['method']} | {row['stream']} | {shown(row['seed'])} | "
                     + " | ".join(cells) + " |")
    return lines
