"""Tables from stored records: a rich table on the terminal, Markdown and CSV under reports/.

Reports read only the record store (docs/evaluation.md#principles: score from stored outputs, never
re-run a model). Every row carries chance level, n_eval / n_official, the selection split and the
marks of docs/evaluation.md#marks-in-tables. Records that differ only in their seed share one
row of the main table, mean ± std over the seeds (`slrbench.report.seeds`), with the seeds' own
rows in a table beside it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

from slrbench.errors import SlrbenchError
from slrbench.fusion.report import fusion_section, rich_section
from slrbench.marks import FLAG_NOTES, record_flags
from slrbench.metrics import METRIC_LABELS
from slrbench.profiling import fused_profile, load_profiles, stream_profile
from slrbench.report.cells import PERCENT_METRICS, metric_scale, preset_label, shown, spread_text
from slrbench.report.claims import claims
from slrbench.report.claims import markdown_section as claims_section
from slrbench.report.figures import figures_section
from slrbench.report.html import markdown_to_html
from slrbench.report.latex import latex_table
from slrbench.report.minimal_pairs import (
    dataset_minimal_pairs,
    minimal_pairs_markdown,
    minimal_pairs_rich,
    minimal_pairs_rows,
    pair_kinds,
)
from slrbench.report.seeds import SEED_ANCHOR, SEED_HEADING, SeedGroup, group_seeds, seed_label
from slrbench.report.significance import markdown_section as significance_section
from slrbench.report.significance import pairwise_tests, within_one_seed
from slrbench.store.atomic import atomic_write_text
from slrbench.store.record_store import RecordStore
from slrbench.store.records import RunRecord

REPORT_FORMATS = ("md", "csv", "latex", "html")
HEADLINE_METRICS = ("pi@1", "pi@5", "pc@1", "pc@5")
EXTRA_METRICS = ("pc_union@1", "nll", "ece")


def format_metric(metric: dict[str, Any] | None, key: str) -> str:
    if not metric:
        return "–"
    scale, digits = metric_scale(key)
    value = f"{metric['value'] * scale:.{digits}f}"
    if metric.get("ci_low") is None:
        return value
    return (f"{value} [{metric['ci_low'] * scale:.{digits}f}, "
            f"{metric['ci_high'] * scale:.{digits}f}]")


def latest_records(store: RecordStore, dataset: str, split: str) -> list[RunRecord]:
    """The newest record per (method, preset, stream, seed, config): re-runs supersede. Each
    is checked on load (docs/store.md#checked-on-load) before any of its numbers is shown."""
    rows = store.find(dataset=dataset, split=split)
    store.require_readable()
    if not rows:
        from slrbench.datasets.registry import REGISTRY

        if dataset not in REGISTRY:  # a user's own dataset is reported once it has records
            raise SlrbenchError(
                f"--dataset: unknown dataset '{dataset}' (no records of it in {store.root}); "
                f"expected one of {', '.join(REGISTRY)} or a dataset with stored records")
        raise SlrbenchError(
            f"--dataset {dataset}: no {split} records in {store.root}; "
            f"run `slrbench run --method slgcn --dataset {dataset}` first"
        )
    frame = pd.DataFrame(rows).sort_values("finished_at")
    keys = ["method", "preset", "stream", "seed", "config_sha256"]
    latest = frame.groupby(keys, sort=False, dropna=False).tail(1)
    records = [store.load_checked(run_id) for run_id in latest["run_id"]]
    # Paths are attached before sorting so each row links to its own record.
    for record, path in zip(records, latest["path"]):
        record.meta["_path"] = str(path)
    # Fused records may lack a common preset or seed: None sorts first instead of failing.
    records.sort(key=lambda r: (r.meta["method"], r.meta["preset"] or "", _stream_order(r.meta),
                                -1 if r.meta["seed"] is None else r.meta["seed"]))
    return records


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
            "overrides": ";".join(f"{k}={v}" for k, v in sorted(
                (meta.get("overrides") or {}).items())),
            "stream": meta["stream"],
            "seed": meta["seed"],
        }
        for key in HEADLINE_METRICS + EXTRA_METRICS:
            metric = metrics.get(key)
            scale = 100.0 if key in PERCENT_METRICS else 1.0
            row[key] = None if metric is None else metric["value"] * scale
            row[f"{key}_lo"] = (
                None if not metric or metric.get("ci_low") is None else metric["ci_low"] * scale
            )
            row[f"{key}_hi"] = (
                None if not metric or metric.get("ci_high") is None else metric["ci_high"] * scale
            )
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
                **_efficiency(meta),
                "config_sha256": meta["config_sha256"][:12],
                "run_id": meta["run_id"],
                "record": meta["_path"],
            }
        )
        rows.append(row)
    return rows


def group_rows(groups: Iterable[SeedGroup], split: str) -> list[dict[str, Any]]:
    """The main CSV: one row per seed group (docs/evaluation.md#several-seeds). A pooled row
    holds the mean over its seeds in the metric columns, their sample standard deviation in
    `<metric>_std` and no interval (intervals are per seed: see the `_seeds` CSV); a row of
    one seed is its record's row with an empty `_std`."""
    rows = []
    for group in groups:
        row = flat_rows([group.first], split)[0]
        if group.pooled:
            row.update(_pooled_fields(group, split))
        rows.append(_with_seed_columns(row, group))
    return rows


def _pooled_fields(group: SeedGroup, split: str) -> dict[str, Any]:
    fields: dict[str, Any] = {"seed": seed_label(group.seeds, ";")}
    for key in HEADLINE_METRICS + EXTRA_METRICS:
        spread = group.spread(key)
        fields[key] = None if spread is None else spread.mean * metric_scale(key)[0]
        fields[f"{key}_lo"] = fields[f"{key}_hi"] = None
    for name in ("n_eval", "n_official", "classes_present", "selection_split", "selected_epoch"):
        fields[name] = group.common(name, ";")
    fields.update(
        flags=group.flags(split),
        config_sha256=";".join(dict.fromkeys(m["config_sha256"][:12] for m in group.metas)),
        run_id=";".join(m["run_id"] for m in group.metas),
        record=";".join(m["_path"] for m in group.metas),
    )
    return fields


def _with_seed_columns(row: dict[str, Any], group: SeedGroup) -> dict[str, Any]:
    """`n_seeds` after `seed` and `<metric>_std` after each interval, so the columns are the
    same whether or not a row pools seeds."""
    out: dict[str, Any] = {}
    for name, value in row.items():
        out[name] = value
        if name == "seed":
            out["n_seeds"] = len(group.metas)
        elif name.endswith("_hi"):
            key = name.removesuffix("_hi")
            spread = group.spread(key) if group.pooled else None
            out[f"{key}_std"] = (None if spread is None or spread.std is None
                                 else spread.std * metric_scale(key)[0])
    return out


def _efficiency(meta: dict[str, Any]) -> dict[str, Any]:
    """`slrbench profile` figures of the record's model, where measured."""
    row = meta.get("_profile") or {}
    return {"gflops_per_sample": row.get("gflops_per_sample"),
            "train_samples_per_s": row.get("train_samples_per_s"),
            "infer_samples_per_s": row.get("infer_samples_per_s")}


def _efficiency_cells(meta: dict[str, Any]) -> str:
    figures = _efficiency(meta)
    params = meta.get("params")
    speed = " / ".join("–" if figures[k] is None else f"{figures[k]:g}"
                       for k in ("train_samples_per_s", "infer_samples_per_s"))
    gflops = figures["gflops_per_sample"]
    return (f"{'–' if params is None else f'{params:,}'} | "
            f"{'–' if gflops is None else f'{gflops:g}'} | {speed}")


def _chance_line(num_classes: int) -> str:
    return (f"chance: P-I@1 {100 / num_classes:.2f} %, "
            f"P-I@5 {100 * min(5, num_classes) / num_classes:.2f} %")


def _rich_table(groups: list[SeedGroup], split: str, dataset: str) -> Table:
    # Compact enough for 80 columns: the CI sits under its value, preset and seed under the
    # run name; the Markdown and CSV files carry every field.
    metas = [meta for group in groups for meta in group.metas]
    selections = sorted({str(m["selection_split"]) for m in metas})
    pooled = " · over seeds: mean, ± std below" if any(g.pooled for g in groups) else ""
    table = Table(
        title=f"{dataset} · {split} split (%, 95 % CI below)",
        caption=f"{_chance_line(metas[0]['num_classes'])} · selection on {', '.join(selections)}"
                + pooled,
    )
    table.add_column("method:stream", no_wrap=True)
    for key in HEADLINE_METRICS:
        table.add_column(METRIC_LABELS[key], justify="right", no_wrap=True)
    table.add_column("n", justify="right", no_wrap=True)
    table.add_column("flags", no_wrap=True)
    for group in groups:
        meta = group.first
        cells = [_rich_cell(group, key) for key in HEADLINE_METRICS]
        n = str(group.common("n_eval"))
        if group.common("n_eval") != group.common("n_official"):
            n += f"/{group.common('n_official')}"
        seeds = (f"seeds {seed_label(group.seeds)}" if group.pooled
                 else f"seed {shown(meta['seed'])}")
        table.add_row(
            f"{meta['method']}:{meta['stream']}\n[dim]{preset_label(meta)} · {seeds}[/dim]",
            *cells,
            n,
            group.flags(split),
        )
    return table


def _rich_cell(group: SeedGroup, key: str) -> str:
    if group.pooled:
        spread = group.spread(key)
        if spread is None:
            return "–"
        mean, _, rest = spread_text(spread, key).partition(" ")
        return f"{mean}\n[dim]{rest}[/dim]"
    metric = (group.first.get("metrics") or {}).get(key)
    value = format_metric(metric, key).partition(" ")[0]
    if metric and metric.get("ci_low") is not None:
        value += f"\n[dim]{100 * metric['ci_low']:.1f}–{100 * metric['ci_high']:.1f}[/dim]"
    return value


def _markdown_header() -> list[str]:
    return [
        "| method | preset | stream | seed | "
        + " | ".join(METRIC_LABELS[k] for k in HEADLINE_METRICS)
        + " | pc_union@1 | n_eval / n_official | selection | tuned on | params | GFLOPs | "
        "samples/s train / infer | flags | record |",
        "|" + " --- |" * (13 + len(HEADLINE_METRICS)),
    ]


def _record_row(meta: dict[str, Any], split: str, out_dir: Path) -> str:
    """One record: each value with its 95 % bootstrap interval, a link to its run.json."""
    metrics = meta.get("metrics", {})
    record = Path(meta["_path"], "run.json")
    try:
        link = record.resolve().relative_to(out_dir.resolve().parent)
    except ValueError:
        link = record.resolve()
    return (
        f"| {meta['method']} | {preset_label(meta)} | {meta['stream']} | "
        f"{shown(meta['seed'])} | "
        + " | ".join(format_metric(metrics.get(k), k) for k in HEADLINE_METRICS)
        + f" | {format_metric(metrics.get('pc_union@1'), 'pc_union@1')}"
        + f" | {meta['n_eval']} / {meta['n_official']} | {meta['selection_split']}"
        + f" | {(meta.get('fusion') or {}).get('tuned_on') or '–'}"
        + f" | {_efficiency_cells(meta)}"
        + f" | {record_flags(meta, split)} | [{meta['run_id']}]({link}) |"
    )


def _pooled_row(group: SeedGroup, split: str) -> str:
    """Several seeds: mean ± std (n) per metric, a link to the seeds' own rows."""
    meta = group.first
    cells = [
        meta["method"], preset_label(meta), meta["stream"], seed_label(group.seeds),
        *(spread_text(group.spread(k), k) for k in (*HEADLINE_METRICS, "pc_union@1")),
        f"{group.common('n_eval')} / {group.common('n_official')}",
        str(group.common("selection_split")),
        (meta.get("fusion") or {}).get("tuned_on") or "–",
        _efficiency_cells(meta),  # one configuration: one model, whatever the seed
        group.flags(split),
        f"[{len(group.metas)} seeds](#{SEED_ANCHOR})",
    ]
    return "| " + " | ".join(cells) + " |"


def _flag_notes(flags: Iterable[str]) -> list[str]:
    used = {flag for marks in flags for flag in marks}
    if not used:
        return []
    notes = "; ".join(f"{f} {FLAG_NOTES[f]}" for f in FLAG_NOTES if f in used)
    return ["", "Flags: " + notes + "."]


def _markdown(groups: list[SeedGroup], split: str, dataset: str, out_dir: Path) -> str:
    num_classes = groups[0].first["num_classes"]
    lines = [
        f"# {dataset} — {split} split",
        "",
        f"{_chance_line(num_classes)} · K = {num_classes}. Values in %, 95 % bootstrap percentile "
        "intervals over samples in brackets (docs/evaluation.md#bootstrap-intervals). "
        "P-I = per-instance, P-C = per-class over the classes present in the ground truth.",
        "",
        *_markdown_header(),
    ]
    lines += [_pooled_row(g, split) if g.pooled else _record_row(g.first, split, out_dir)
              for g in groups]
    lines += _flag_notes(group.flags(split) for group in groups)
    for group in groups:
        if "†" in group.flags(split):
            lines.append(
                f"- {group.first['method']}/{group.first['stream']}: selection or tuning touched "
                f"the {split} split; this number is not a clean test result."
            )
    pooled = [group for group in groups if group.pooled]
    if pooled:
        lines += ["", _POOLED_NOTE.format(anchor=SEED_ANCHOR), *_seed_section(pooled, split,
                                                                               out_dir)]
    return "\n".join(lines) + "\n"


# The bootstrap interval describes one seed's test sample, not the spread over seeds, so a
# pooled row shows no interval and points to the seeds' own rows instead.
_POOLED_NOTE = (
    "Rows over several seeds (n = seeds) show the mean ± sample standard deviation (ddof = 1) "
    "over the seeds and no interval: the 95 % bootstrap intervals are per seed, listed with "
    "each seed's values under [per-seed results](#{anchor}) "
    "(docs/evaluation.md#several-seeds).")


def _seed_section(groups: list[SeedGroup], split: str, out_dir: Path) -> list[str]:
    """Every record the main table pooled, one row per seed, as the main table shows one."""
    metas = [meta for group in groups for meta in group.metas]
    return [
        "", f"## {SEED_HEADING}", "",
        "The seeds behind each pooled row above, each with its own 95 % bootstrap interval.", "",
        *_markdown_header(),
        *(_record_row(meta, split, out_dir) for meta in metas),
        *_flag_notes(record_flags(meta, split) for meta in metas),
    ]


def build_report(
    store: RecordStore,
    dataset: str,
    split: str,
    out_root: Path,
    formats: Iterable[str],
    console: Console | None = None,
) -> list[Path]:
    records = latest_records(store, dataset, split)
    metas = [record.meta for record in records]
    profiles = load_profiles(store.root)
    for meta in metas:  # private key, like `_path`: never written back to a record
        meta["_profile"] = (fused_profile(profiles, meta) if meta.get("fusion")
                            else stream_profile(profiles, meta))
    # The newest record per seed is pooled with its configuration's other seeds.
    configs = {str(row["run_id"]): str(row["config_sha256"])
               for row in store.find(dataset=dataset) if row.get("config_sha256")}
    groups = group_seeds(metas, configs)
    out_dir = Path(out_root) / dataset
    out_dir.mkdir(parents=True, exist_ok=True)
    pairs, num_classes = dataset_minimal_pairs(dataset)
    pair_rows = minimal_pairs_rows(records, pairs, num_classes) if pairs else []
    if console is not None:
        console.print(_rich_table(groups, split, dataset))
        rich_section(metas, split, console)
        if pair_rows:
            console.print(minimal_pairs_rich(pair_rows, pairs))
    written: list[Path] = []
    stem = f"results-{dataset}" if split == "test" else f"results-{dataset}-{split}"
    if "csv" in formats:
        written.append(atomic_write_text(
            out_dir / f"{stem}.csv", pd.DataFrame(group_rows(groups, split)).to_csv(index=False)))
        if any(group.pooled for group in groups):  # every record, as one seed's row shows it
            written.append(atomic_write_text(
                out_dir / f"{stem}_seeds.csv",
                pd.DataFrame(flat_rows(metas, split)).to_csv(index=False)))
    if "latex" in formats:
        path = out_dir / f"{stem}.tex"
        atomic_write_text(path, latex_table(groups, split, dataset))
        written.append(path)
    if "md" in formats or "html" in formats:
        # Fused records and their ablations (tables plus a heatmap figure) follow the table.
        section, figures = fusion_section(metas, split, out_dir)
        section += minimal_pairs_markdown(pair_rows, pairs)
        tested, seed = within_one_seed(records)
        section += significance_section(pairwise_tests(tested), seed)
        section += claims_section(claims(records, dataset), split)
        figure_lines, plots = figures_section(
            records, split, dataset, out_dir, _class_names(dataset, split), pair_rows,
            pair_kinds(pairs) if pairs else None)
        section += figure_lines
        text = _markdown(groups, split, dataset, out_dir)
        text += "\n".join(section) + "\n" if section else ""
        written += [*figures, *plots]
        if "md" in formats:
            written.append(atomic_write_text(out_dir / f"{stem}.md", text))
        if "html" in formats:  # one file: the figures are embedded, nothing is fetched
            written.append(atomic_write_text(out_dir / f"{stem}.html", markdown_to_html(
                text, f"slrbench · {dataset} · {split}", out_dir)))
    return written


def _class_names(dataset: str, split: str) -> tuple[str, ...] | None:
    """Class names for the confused-pairs table, where the registry ships them."""
    from slrbench.datasets.official import official_split

    try:
        table = official_split(dataset, split)
    except SlrbenchError:  # not a registry dataset (a user's own): indices only
        return None
    return table.classes if table is not None else None
