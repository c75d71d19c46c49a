"""Claimed versus reproduced: what each method's paper or repository reports on a dataset,
beside slrbench's best record of that method there (docs/evaluation.md#published-numbers)."""

from __future__ import annotations

from dataclasses import dataclass

from slrbench.marks import legend, record_flags
from slrbench.methods.base import PublishedResult
from slrbench.metrics import METRIC_LABELS
from slrbench.report.significance import top1
from slrbench.store.records import RunRecord


@dataclass(frozen=True)
class Claim:
    published: PublishedResult
    reproduced: RunRecord | None  # the method's best record on the dataset (by P-I@1)
    value: float | None  # the reproduced value of the published metric, in percent


def published_results(method: str, dataset: str) -> tuple[PublishedResult, ...]:
    from slrbench.methods.registry import METHOD_NAMES, get_method

    if method not in METHOD_NAMES:  # imported under a name of your own: nothing published
        return ()
    return tuple(r for r in get_method(method).spec.published if r.dataset == dataset)


def claims(records: list[RunRecord], dataset: str) -> list[Claim]:
    out = []
    for method in sorted({r.method for r in records}):
        mine = [r for r in records if r.method == method]
        best = max(mine, key=top1)
        for result in published_results(method, dataset):
            metric = best.metrics.get(result.metric)
            value = 100 * float(metric["value"]) if isinstance(metric, dict) else None
            out.append(Claim(result, best, value))
    return out


def markdown_section(found: list[Claim], split: str) -> list[str]:
    if not found:
        return []
    lines = ["", "## Claimed and reproduced", "",
             "Published numbers for this dataset (source and the split that tuned them upstream) "
             "beside the method's best record here; Δ = reproduced − claimed, in points.", "",
             "| method | published setting | metric | claimed | flags | tuned on upstream | "
             "source | reproduced (record) | Δ |", "|" + " --- |" * 9]
    for claim in found:
        result, record = claim.published, claim.reproduced
        flags = record_flags(record.meta, split) if record is not None else ""
        reproduced = "–" if claim.value is None or record is None else (
            f"{claim.value:.2f} ({record.stream}{' ' + flags if flags else ''})")
        delta = "–" if claim.value is None else f"{claim.value - result.value:+.2f}"
        metric = METRIC_LABELS.get(result.metric, result.metric)
        lines.append(f"| {record.method if record else ''} | {result.setting} | {metric} | "
                     f"{result.value:.2f} | {result.flags} | {result.tuned_on} | "
                     f"{result.source} | {reproduced} | {delta} |")
    flags = "".join(c.published.flags for c in found) + "".join(
        record_flags(c.reproduced.meta, split) for c in found if c.reproduced is not None)
    lines += ["", *(f"- {line}" for line in legend(flags, [c.published.source for c in found]))]
    return lines
