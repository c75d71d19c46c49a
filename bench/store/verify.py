"""Stored numbers are checked, not trusted (docs/store.md#checked-on-load).

A record that feeds a report, a fusion or a reuse is re-derived before use: its headline
metrics are recomputed from the stored scores and labels (the ranks of `slrbench.metrics`,
cheap next to reading the arrays), and its dataset facts are compared with the registry: number
of classes, class list and, where the registry knows the official ids, that every sample id
belongs to the split. A record that disagrees is refused with one line naming its run.json; an
edited number never reaches a table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from slrbench.errors import SlrbenchError
from slrbench.metrics import per_class_accuracy, true_class_rank
from slrbench.store.records import RunRecord

# Stored values are the float64 results of the same arithmetic; the tolerance only absorbs a
# last-digit difference from summation order on another platform.
METRIC_TOLERANCE = 1e-9


@dataclass(frozen=True)
class RegistryFacts:
    """What the dataset registry says a record of `dataset` must agree with."""

    dataset: str
    num_classes: int
    vocab_sha256: str | None = None  # None: the registry ships no class list for this dataset
    split_ids: Mapping[str, frozenset[str]] | None = None  # None: official ids not shipped
    split_sizes: Mapping[str, int | None] | None = None


def headline_metrics(record: RunRecord) -> dict[str, float]:
    """pi@k and pc@k (k = 1, 5 where K allows) recomputed from the stored arrays."""
    labels, k_total = record.labels, record.num_classes
    if record.score_kind == "pred_top1":
        hits = {1: record.scores == labels}
    else:
        rank = true_class_rank(record.scores, labels)
        hits = {k: rank <= k for k in (1, 5) if k <= k_total}
    out: dict[str, float] = {}
    for k, hit in hits.items():
        out[f"pi@{k}"] = float(hit.mean())
        out[f"pc@{k}"] = per_class_accuracy(hit, labels, k_total)[0]
    return out


def _stored_value(entry: Any) -> Any:
    return entry.get("value") if isinstance(entry, Mapping) else entry


def check_metrics(record: RunRecord, source: str) -> None:
    """Refuse a record whose stored headline metrics are missing, non-finite or disagree."""
    stored = record.metrics
    for name, value in headline_metrics(record).items():
        if name not in stored:
            continue  # older or imported records may carry fewer metrics; none is invented
        claimed = _stored_value(stored[name])
        if not isinstance(claimed, (int, float)) or isinstance(claimed, bool) \
                or not math.isfinite(claimed):
            raise SlrbenchError(f"{source}: stored metric {name} is {claimed!r}; expected the "
                                f"finite value {value:.6f} that its scores and labels give")
        if abs(claimed - value) > METRIC_TOLERANCE:
            raise SlrbenchError(
                f"{source}: stored metric {name} is {claimed:.6f} but the stored scores and "
                f"labels give {value:.6f}; expected them to agree (the record was edited or "
                "damaged: re-run or re-import it)")


def check_registry(record: RunRecord, facts: RegistryFacts, source: str) -> None:
    """Refuse a record whose classes or sample ids contradict the dataset registry."""
    meta = record.meta
    if record.num_classes != facts.num_classes:
        raise SlrbenchError(
            f"{source}: num_classes is {record.num_classes}; expected {facts.num_classes} "
            f"(dataset '{facts.dataset}' in the registry)")
    vocab = meta.get("vocab_sha256")
    if facts.vocab_sha256 is not None and vocab is not None and vocab != facts.vocab_sha256:
        raise SlrbenchError(
            f"{source}: vocab_sha256 is {str(vocab)[:16]}…; expected {facts.vocab_sha256[:16]}… "
            f"(the class list of '{facts.dataset}' in the registry: scores in another class "
            "order would be compared with the wrong labels)")
    split = record.split
    official = (facts.split_ids or {}).get(split)
    if official is not None:
        foreign = [i for i in record.sample_ids.tolist() if i not in official]
        if foreign:
            shown = ", ".join(repr(i) for i in foreign[:3])
            raise SlrbenchError(
                f"{source}: {len(foreign)} sample id(s) not in the official {split} split of "
                f"'{facts.dataset}' ({shown}{', …' if len(foreign) > 3 else ''}); expected a "
                "subset of the registry's ids")
        return
    size = (facts.split_sizes or {}).get(split)
    if size is not None and record.n > size:
        raise SlrbenchError(
            f"{source}: {record.n} samples; expected at most {size}, the official size of the "
            f"{split} split of '{facts.dataset}'")


def verify_record(record: RunRecord, facts: RegistryFacts | None, source: str) -> None:
    """Both checks; `facts` None means the dataset is not in the registry (a user's own)."""
    check_metrics(record, source)
    if facts is not None:
        check_registry(record, facts, source)
