"""Tables from stored records: a rich table on the terminal, Markdown and CSV under reports/.

Reports read only the record store (evaluation.md: score from stored outputs, never re-run a
model). Every row carries chance level, n_eval / n_official, the selection split and the flags of
evaluation.md §8.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

from slrbench.atomic import atomic_write_text
from slrbench.errors import SlrbenchError
from slrbench.fusion_report import fusion_section, rich_section
from slrbench.metrics import METRIC_LABELS
from slrbench.minimal_pairs import (dataset_minimal_pairs, minimal_pairs_markdown,
                                    minimal_pairs_rich, minimal_pairs_rows)
from slrbench.records import read_meta
from slrbench.store import RecordStore

REPORT_FORMATS = ("md", "csv")
HEADLINE_METRICS = ("pi@1", "pi@5", "pc@1", "pc@5")
EXTRA_METRICS = ("pc_union@1", "nll", "ece")
PERCENT_METRICS = frozenset({"pi@1", "pi@5", "pc@1", "pc@5", "pc_union@1", "ece"})
FLAG_NOTES = {
    "†": "checkpoint or fusion weights selected on the reported split",
    "‡": "reported split possibly val + test merged",
    "*": "extra training data or external pre-training",
    "◊": "slrbench reconstruction (no upstream code)",
}


def record_flags(meta: dict[str, Any], split: str) -> str:
    """The evaluation.md §8 markers that apply to one record."""
    flags = ""
    if meta.get("test_tuned") or meta.get("selection_split") == split:
        flags += "†"
    if meta.get("val_test_merged"):
        flags += "‡"
    protocol = meta.get("test_protocol") or {}
    if protocol.get("extra_data") or protocol.get("external_pretraining"):
        flags += "*"
    if meta.get("reconstruction"):
        flags += "◊"
    return flags


def _format_metric(metric: dict[str, Any] | None, key: str) -> str:
    if not metric:
        return "–"
    scale = 100.0 if key in PERCENT_METRICS else 1.0
    digits = 2 if key in PERCENT_METRICS else 3
    value = f"{metric['value'] * scale:.{digits}f}"
    if metric.get("ci_low") is None:
        return value
    return f"{value} [{metric['ci_low'] * scale:.{digits}f}, {metric['ci_high'] * scale:.{digits}f}]"


def _latest_metas(store: RecordStore, dataset: str, split: str) -> list[dict[str, Any]]:
    """The newest record per (method, preset, stream, seed, config): re-runs supersede."""
    rows = store.find(dataset=dataset, split=split)
    corrupt = store.corrupt_runs()
    if corrupt:
        # A leaderboard must not silently drop a record it cannot read.
        reason = next(iter(corrupt.values()))
        raise SlrbenchError(f"{reason} ({len(corrupt)} unreadable run dir(s); repair or remove them)")
    if not rows:
        raise SlrbenchError(
            f"--dataset {dataset}: no {split} records in {store.root}; "
            f"run `slrbench run --method slgcn --dataset {dataset}` first"
        )
    frame = pd.DataFrame(rows).sort_values("finished_at")
    keys = ["method", "preset", "stream", "seed", "config_sha256"]
    latest = frame.groupby(keys, sort=False, dropna=False).tail(1)
    metas = [read_meta(Path(path)) for path in latest["path"]]
    # Paths are attached before sorting so each row links to its own record.
    for meta, path in zip(metas, latest["path"]):
        meta["_path"] = str(path)
    # Fused records may lack a common preset or seed: None sorts first instead of failing.
    metas.sort(key=lambda m: (m["method"], m["preset"] or "", _stream_order(m),
                              -1 if m["seed"] is None else m["seed"]))
    return metas


def _stream_order(meta: dict[str, Any]) -> tuple[int, str]:
    order = meta.get("config", {}).get("stream_order") or []
    stream = meta["stream"]
    return (order.index(stream) if stream in order else len(order), stream)


def flat_rows(metas: Iterable[dict[str, Any]], split: str) -> list[dict[str, Any]]:
    rows = []
    for meta in metas:
        metrics = meta.get("metrics", {})
        row: dict[str, Any] = {
            "method": meta["method"],
            "preset": meta["preset"],
            "stream": meta["stream"],
            "seed": meta["seed"],
        }
        for key in HEADLINE_METRICS + EXTRA_METRICS:
            metric = metrics.get(key)
            scale = 100.0 if key in PERCENT_METRICS else 1.0
            row[key] = None if metric is None else metric["value"] * scale
            row[f"{key}_lo"] = None if not metric or metric.get("ci_low") is None else metric["ci_low"] * scale
            row[f"{key}_hi"] = None if not metric or metric.get("ci_high") is None else metric["ci_high"] * scale
        row.update(
            {
                "n_eval": meta["n_eval"],
                "n_official": meta["n_official"],
                "classes_present": meta["classes_present"],
                "num_classes": meta["num_classes"],
                "selection_split": meta["selection_split"],
                "selected_epoch": meta.get("selected_epoch"),
                "tuned_on": (meta.get("fusion") or {}).get("tuned_on", ""),
                "flags": record_flags(meta, split),
                "params": meta.get("params"),
                "config_sha256": meta["config_sha256"][:12],
                "run_id": meta["run_id"],
                "record": meta["_path"],
            }
        )
        rows.append(row)
    return rows


def _chance_line(num_classes: int) -> str:
    return f"chance: P-I@1 {100 / num_classes:.2f} %, P-I@5 {100 * min(5, num_classes) / num_classes:.2f} %"


def _rich_table(metas: list[dict[str, Any]], split: str, dataset: str) -> Table:
    # Compact enough for 80 columns: the CI sits under its value, preset and seed under the
    # run name; the Markdown and CSV files carry every field.
    selections = sorted({m["selection_split"] for m in metas})
    table = Table(
        title=f"{dataset} · {split} split (%, 95 % CI below)",
        caption=f"{_chance_line(metas[0]['num_classes'])} · selection on {', '.join(selections)}",
    )
    table.add_column("method:stream", no_wrap=True)
    for key in HEADLINE_METRICS:
        table.add_column(METRIC_LABELS[key], justify="right", no_wrap=True)
    table.add_column("n", justify="right", no_wrap=True)
    table.add_column("flags", no_wrap=True)
    for meta in metas:
        metrics = meta.get("metrics", {})
        cells = []
        for key in HEADLINE_METRICS:
            metric = metrics.get(key)
            value = _format_metric(metric, key).partition(" ")[0]
            if metric and metric.get("ci_low") is not None:
                value += f"\n[dim]{100 * metric['ci_low']:.1f}–{100 * metric['ci_high']:.1f}[/dim]"
            cells.append(value)
        n = str(meta["n_eval"])
        if meta["n_eval"] != meta["n_official"]:
            n += f"/{meta['n_official']}"
        table.add_row(
            f"{meta['method']}:{meta['stream']}\n[dim]{meta['preset']} · seed {meta['seed']}[/dim]",
            *cells,
            n,
            record_flags(meta, split),
        )
    return table


def _markdown(metas: list[dict[str, Any]], split: str, dataset: str, out_dir: Path) -> str:
    num_classes = metas[0]["num_classes"]
    lines = [
        f"# {dataset} — {split} split",
        "",
        f"{_chance_line(num_classes)} · K = {num_classes}. Values in %, 95 % bootstrap percentile "
        "intervals over samples in brackets (evaluation.md §4.1). P-I = per-instance, "
        "P-C = per-class over the classes present in the ground truth.",
        "",
        "| method | preset | stream | seed | "
        + " | ".join(METRIC_LABELS[k] for k in HEADLINE_METRICS)
        + " | pc_union@1 | n_eval / n_official | selection | flags | record |",
        "|" + " --- |" * (9 + len(HEADLINE_METRICS)),
    ]
    for meta in metas:
        metrics = meta.get("metrics", {})
        record = Path(meta["_path"], "run.json")
        try:
            link = record.resolve().relative_to(out_dir.resolve().parent)
        except ValueError:
            link = record.resolve()
        lines.append(
            f"| {meta['method']} | {meta['preset']} | {meta['stream']} | {meta['seed']} | "
            + " | ".join(_format_metric(metrics.get(k), k) for k in HEADLINE_METRICS)
            + f" | {_format_metric(metrics.get('pc_union@1'), 'pc_union@1')}"
            + f" | {meta['n_eval']} / {meta['n_official']} | {meta['selection_split']}"
            + f" | {record_flags(meta, split)} | [{meta['run_id']}]({link}) |"
        )
    used = {flag for meta in metas for flag in record_flags(meta, split)}
    if used:
        lines += ["", "Flags: " + "; ".join(f"{f} {FLAG_NOTES[f]}" for f in FLAG_NOTES if f in used) + "."]
    leaky = [m for m in metas if "†" in record_flags(m, split)]
    for meta in leaky:
        lines.append(
            f"- {meta['method']}/{meta['stream']}: selection or tuning touched the {split} split; "
            "this number is not a clean test result."
        )
    return "\n".join(lines) + "\n"


def build_report(
    store: RecordStore,
    dataset: str,
    split: str,
    out_root: Path,
    formats: Iterable[str],
    console: Console | None = None,
) -> list[Path]:
    metas = _latest_metas(store, dataset, split)
    out_dir = Path(out_root) / dataset
    out_dir.mkdir(parents=True, exist_ok=True)
    pairs, num_classes = dataset_minimal_pairs(dataset)
    pair_rows = (minimal_pairs_rows([store.load(meta["run_id"]) for meta in metas], pairs,
                                    num_classes) if pairs else [])
    if console is not None:
        console.print(_rich_table(metas, split, dataset))
        rich_section(metas, split, console)
        if pair_rows:
            console.print(minimal_pairs_rich(pair_rows, pairs))
    written: list[Path] = []
    stem = f"results-{dataset}" if split == "test" else f"results-{dataset}-{split}"
    if "csv" in formats:
        path = out_dir / f"{stem}.csv"
        atomic_write_text(path, pd.DataFrame(flat_rows(metas, split)).to_csv(index=False))
        written.append(path)
    if "md" in formats:
        path = out_dir / f"{stem}.md"
        # Fused records and their ablations (tables plus a heatmap figure) follow the table.
        section, figures = fusion_section(metas, split, out_dir)
        section += minimal_pairs_markdown(pair_rows, pairs)
        text = _markdown(metas, split, dataset, out_dir)
        atomic_write_text(path, text + ("\n".join(section) + "\n" if section else ""))
        written += [path, *figures]
    return written


def outcome_table(outcomes: Iterable[Any]) -> Table:
    """Summary printed at the end of `slrbench run`."""
    table = Table(title="run summary")
    for column in ("stream", "status", "val P-I@1", "test P-I@1 [95 % CI]", "test P-C@1", "test record"):
        table.add_column(column)
    for outcome in outcomes:
        val, test = outcome.metrics.get("val", {}), outcome.metrics.get("test", {})
        table.add_row(
            outcome.stream,
            outcome.status,
            _format_metric(val.get("pi@1"), "pi@1").split(" ")[0],
            _format_metric(test.get("pi@1"), "pi@1"),
            _format_metric(test.get("pc@1"), "pc@1").split(" ")[0],
            outcome.run_ids.get("test", "–"),
        )
    return table


def describe_method(adapter: Any, console: Console) -> None:
    """`slrbench methods NAME`: facts, presets, divergences, published numbers."""
    spec = adapter.spec
    console.print(f"[bold]{spec.name}[/bold] — {spec.title}")
    console.print(f"paper: {spec.paper}")
    console.print(f"upstream: {spec.upstream}")
    if spec.summary:
        console.print(spec.summary)
    console.print(f"modalities: {', '.join(spec.modalities)} · streams: {', '.join(spec.streams)}")
    console.print(f"fidelity: {'reconstruction ◊' if spec.reconstruction else 'faithful re-implementation'}")
    rows = adapter.describe_presets()
    if rows:
        table = Table(title="presets")
        for column in rows[0]:
            table.add_column(column)
        for row in rows:
            table.add_row(*(str(v) for v in row.values()))
        console.print(table)
    if spec.fusion is not None:
        fusion = spec.fusion
        console.print(
            f"default fusion: {fusion.strategy} in {fusion.score_space} space, "
            f"weights {fusion.weights_for('default')} ({fusion.source})"
            + (" — tuned on the reported split upstream †" if fusion.test_tuned else "")
        )
    if spec.divergences:
        console.print("[bold]documented divergences from upstream[/bold]")
        for item in spec.divergences:
            console.print(f"  • {item}", highlight=False)
    if spec.published:
        table = Table(title="published numbers (%)")
        for column in ("dataset", "setting", "metric", "value", "source", "flags"):
            table.add_column(column)
        for result in spec.published:
            table.add_row(
                result.dataset,
                result.setting,
                METRIC_LABELS.get(result.metric, result.metric),
                f"{result.value:.2f}",
                result.source,
                result.flags,
            )
        console.print(table)
