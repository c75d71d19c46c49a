"""Fusion output for people: rich tables after `slrbench fuse`, and the fusion / ablation section
of `slrbench report` (Markdown plus a heatmap figure under reports/<dataset>/).

Everything is read from records (the fused record's run.json and its ablation side files), so a
report never re-fits anything. Test-tuned fused records carry † wherever they appear.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

from slrbench.fusion.ablation import POLICY_TEXT, ranking_split
from slrbench.marks import record_flags
from slrbench.metrics import METRIC_LABELS

HEADLINE = ("pi@1", "pi@5", "pc@1", "pc@5")
TOP_SUBSETS = 10
FIGURE_ROWS = 20


def _pct(value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "–"
    return f"{100 * float(value):.2f}"


def _with_ci(row: dict[str, Any], key: str) -> str:
    text = _pct(row.get(key))
    lo, hi = row.get(f"{key}_lo"), row.get(f"{key}_hi")
    if text != "–" and lo is not None and hi is not None and not pd.isna(lo):
        text += f" [{100 * lo:.1f}, {100 * hi:.1f}]"
    return text


def _metric(meta: dict[str, Any], key: str) -> dict[str, Any]:
    entry = (meta.get("metrics") or {}).get(key)
    if not isinstance(entry, dict):
        return {}
    return {key: entry.get("value"), f"{key}_lo": entry.get("ci_low"),
            f"{key}_hi": entry.get("ci_high")}


# ----------------------------------------------------------------------------- fuse output


def weights_table(fusion: dict[str, Any]) -> Table:
    """Chosen weights (per fold when cross-fitted); hierarchical levels when present."""
    table = Table(title=f"fusion weights · {fusion['strategy']} in {fusion['score_space']} "
                        f"space · tuned on {fusion.get('tuned_on') or 'nothing (no fit)'}")
    folds = (fusion.get("crossfit") or {}).get("folds")
    fits = folds if folds else [fusion]
    streams = [i["stream"] for i in fusion["inputs"]]
    table.add_column("stream")
    for i, _fit in enumerate(fits):
        label = f"fold {i}" if folds else "weight"
        table.add_column(label, justify="right")
        if not folds:
            table.add_column("normalised", justify="right")
    for stream in streams:
        cells = []
        for fit in fits:
            weights = fit.get("weights") or {}
            cells.append(f"{weights[stream]:.3f}" if stream in weights else "–")
            if not folds:
                norm = fit.get("weights_normalised") or {}
                cells.append(f"{norm[stream]:.3f}" if stream in norm else "–")
        table.add_row(stream, *cells)
    search = fusion.get("search") or {}
    notes = [fusion.get("weights_source") or ""]
    if fusion.get("n_trials"):
        notes.append(f"{fusion['n_trials']} trials, seed {fusion.get('sampler_seed')}")
    if "C" in search:
        notes.append(f"logistic regression C={search['C']} (no per-stream weights)")
    for level in fusion.get("levels") or []:
        if level.get("level") == 2:
            notes.append("level 2: " + ", ".join(f"{g} {w:.3f}"
                                                 for g, w in level["weights"].items()))
    table.caption = " · ".join(n for n in notes if n)
    return table


def scores_table(records: dict[str, Any], inputs: dict[str, Sequence[Any]]) -> Table:
    """Fused val and test scores, then the input streams for reference."""
    table = Table(title="scores (%, test with 95 % CI)")
    table.add_column("record", no_wrap=True)
    table.add_column("val P-I@1", justify="right")
    for key in HEADLINE:
        table.add_column(f"test {METRIC_LABELS[key]}", justify="right")
    table.add_column("flags")
    rows = [(f"fused:{records['test'].meta['fusion']['strategy']}",
             records.get("val"), records["test"])]
    val_inputs = {r.stream: r for r in inputs.get("val", [])}
    rows += [(r.stream, val_inputs.get(r.stream), r) for r in inputs["test"]]
    for name, val, test in rows:
        vmeta = val.meta if val is not None else {}
        table.add_row(name, _pct(_metric(vmeta, "pi@1").get("pi@1")),
                      *(_with_ci(_metric(test.meta, k), k) for k in HEADLINE),
                      record_flags(test.meta, "test"))
    if "†" in record_flags(records["test"].meta, "test"):
        reasons = "; ".join(records["test"].meta.get("leaky_reasons", [])[:3])
        table.caption = f"† selection or fusion weights touched the reported split: {reasons}"
    return table


def compact_streams(label: str) -> str:
    """`body_j+body_b+rhand_j` -> `body j,b · rhand j` (keeps 12-stream rows readable)."""
    parts: dict[str, list[str]] = {}
    for stream in label.split("+"):
        part, sep, modality = stream.partition("_")
        parts.setdefault(part if sep else "", []).append(modality if sep else stream)
    return " · ".join(f"{part} {','.join(items)}".strip() for part, items in parts.items())


def ranking_note(name: str, frame: pd.DataFrame) -> str:
    """Which split ordered an ablation whose rows are ranked (subsets) or chosen (greedy); a
    table ranked on test is not a clean selection, so it says so."""
    if name not in ("subsets", "greedy"):
        return ""
    return ("ranked on val" if ranking_split(frame) == "val"
            else "ranked on test (no val records)")


POLICY_SHORT = {"refit": "re-fitted weights", "restricted": "restricted weights"}


def ablation_rich(name: str, frame: pd.DataFrame, flags: str = "",
                  policy: str | None = None) -> Table:
    """One ablation table (subsets: the top rows only). Leave-one-out and greedy rows name the
    stream removed or added; the subset table lists its streams compactly and says how its
    weights were chosen (`policy`, the record's weight_policy)."""
    shown = frame.head(TOP_SUBSETS) if name == "subsets" else frame
    title = {"loo": "leave one stream out", "subsets": f"all subsets (top {len(shown)} of "
             f"{len(frame)})", "greedy": "greedy forward selection"}[name]
    if name == "subsets" and policy in POLICY_SHORT:
        title += f" · {POLICY_SHORT[policy]}"
    note = ranking_note(name, frame)
    table = Table(title=f"ablation · {title}{' · ' + note if note else ''}"
                        f"{' ' + flags if flags else ''}")
    first = {"loo": "removed", "subsets": "rank", "greedy": "added"}[name]
    table.add_column(first, no_wrap=True)
    if name == "subsets":
        table.add_column("streams", overflow="fold")
    has_val = "val_pi@1" in frame
    if has_val:
        table.add_column("val P-I@1", justify="right", no_wrap=True)
    table.add_column("test P-I@1 [CI]", justify="right", no_wrap=True)
    table.add_column("test P-C@1", justify="right", no_wrap=True)
    if "delta_test_pi@1" in frame:
        table.add_column("Δ test P-I@1", justify="right", no_wrap=True)
    for row in shown.to_dict("records"):
        cells = [str(row[first])]
        if name == "subsets":
            cells.append(compact_streams(row["streams"]))
        if has_val:
            cells.append(_pct(row.get("val_pi@1")))
        cells += [_with_ci(row, "test_pi@1"), _pct(row.get("test_pc@1"))]
        if "delta_test_pi@1" in frame:
            cells.append(f"{100 * row['delta_test_pi@1']:+.2f}")
        table.add_row(*cells)
    return table


def print_outcome(outcome: Any, console: Console) -> None:
    """Everything `slrbench fuse` shows."""
    test = outcome.records["test"]
    console.print(weights_table(test.meta["fusion"]))
    console.print(scores_table(outcome.records, outcome.inputs))
    flags = record_flags(test.meta, "test")
    policy = _policy(test.meta)
    for name, table in outcome.tables.items():
        console.print(ablation_rich(name, table.frame, flags, policy))
    for split, path in outcome.paths.items():
        console.print(f"{split} record: {path}", highlight=False)


def _policy(meta: dict[str, Any]) -> str | None:
    return (((meta.get("fusion") or {}).get("ablations")) or {}).get("weight_policy")


# --------------------------------------------------------------------------- report section


def _read_tables(meta: dict[str, Any]) -> dict[str, pd.DataFrame]:
    files = ((meta.get("fusion") or {}).get("ablations") or {}).get("files") or {}
    tables = {}
    for name, file_name in files.items():
        path = Path(meta["_path"]) / file_name
        if path.is_file():
            tables[name] = pd.read_csv(path)
    return tables


def _md_table(name: str, frame: pd.DataFrame) -> list[str]:
    shown = frame.head(TOP_SUBSETS) if name == "subsets" else frame
    first = {"loo": "removed", "subsets": "rank", "greedy": "added"}[name]
    has_val = "val_pi@1" in frame
    head = [first, "streams"] + (["val P-I@1"] if has_val else []) + [
        f"test {METRIC_LABELS[k]}" for k in HEADLINE if f"test_{k}" in frame]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for row in shown.to_dict("records"):
        cells = [str(row[first]), row["streams"]] + ([_pct(row.get("val_pi@1"))]
                                                     if has_val else [])
        cells += [_with_ci(row, f"test_{k}") for k in HEADLINE if f"test_{k}" in frame]
        lines.append("| " + " | ".join(cells) + " |")
    if name == "subsets" and len(frame) > len(shown):
        lines.append(f"\n{len(frame) - len(shown)} more rows in the CSV beside the record.")
    return lines


def heatmap(meta: dict[str, Any], tables: dict[str, pd.DataFrame], path: Path) -> Path | None:
    """Stream membership x subset heatmap coloured by test P-I@1 (subsets: top rows by the
    ranking split; else greedy or leave-one-out rows), beside the leave-one-out deltas."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    source = next((n for n in ("subsets", "greedy", "loo") if n in tables), None)
    if source is None:
        return None
    frame = tables[source].head(FIGURE_ROWS)
    streams = [i["stream"] for i in meta["fusion"]["inputs"]]
    grid = np.full((len(frame), len(streams)), np.nan)
    for r, row in enumerate(frame.to_dict("records")):
        members = set(str(row["streams"]).split("+"))
        for c, stream in enumerate(streams):
            if stream in members:
                grid[r, c] = 100 * row["test_pi@1"]
    loo = tables.get("loo")
    fig, axes = plt.subplots(1, 2 if loo is not None else 1, squeeze=False,
                             figsize=(4 + 0.45 * len(streams) + (3 if loo is not None else 0),
                                      1.5 + 0.3 * len(frame)),
                             gridspec_kw={"width_ratios": [2, 1] if loo is not None else [1]})
    ax = axes[0][0]
    image = ax.imshow(grid, aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(streams)), streams, rotation=45, ha="right")
    labels = [f"{first} · {100 * v:.1f}" for first, v in
              zip(frame[{"loo": "removed", "subsets": "rank", "greedy": "added"}[source]],
                  frame["test_pi@1"])]
    ax.set_yticks(range(len(frame)), labels)
    ax.set_ylabel({"loo": "removed", "subsets": "rank", "greedy": "added"}[source]
                  + " · test P-I@1 (%)")
    ax.set_title(f"{source}: streams used (colour = test P-I@1 %)", fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.05)
    if loo is not None:
        bars = axes[0][1]
        rows = loo[loo["removed"] != "none"]
        bars.barh(range(len(rows)), 100 * rows["delta_test_pi@1"], color="tab:red")
        bars.set_yticks(range(len(rows)), [f"−{s}" for s in rows["removed"]])
        bars.invert_yaxis()
        bars.axvline(0, color="black", linewidth=0.8)
        bars.set_title("leave one out: Δ test P-I@1 (points)", fontsize=9)
    flags = record_flags(meta, "test")
    fig.suptitle(f"{meta['method']} {meta['stream']}{' ' + flags if flags else ''}", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def fused_metas(metas: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in metas if m.get("fusion")]


def fusion_section(metas: Iterable[dict[str, Any]], split: str,
                   out_dir: Path) -> tuple[list[str], list[Path]]:
    """Markdown lines for the fused records and their ablations, and the figures written."""
    fused = fused_metas(metas)
    if not fused:
        return [], []
    lines = ["", "## Fusion", "",
             "| method | stream | space | tuned on | weights (normalised) | flags |",
             "| --- | --- | --- | --- | --- | --- |"]
    for meta in fused:
        block = meta["fusion"]
        weights = block.get("weights_normalised") or {}
        text = ", ".join(f"{s} {w:.2f}" for s, w in weights.items()) or (
            "per fold" if block.get("crossfit") else "stacked model")
        lines.append(f"| {meta['method']} | {meta['stream']} | {block.get('score_space')} | "
                     f"{block.get('tuned_on') or '–'} | {text} | {record_flags(meta, split)} |")
    figures: list[Path] = []
    for meta in fused:
        tables = _read_tables(meta)
        if not tables:
            continue
        flags = record_flags(meta, split)
        summary = meta["fusion"]["ablations"]
        policy = summary.get("weight_policy")
        # Older records store the restricted policy's sentence itself, not its name.
        text = f"{policy}: {POLICY_TEXT[policy]}" if policy in POLICY_TEXT else policy
        lines += ["", f"### Ablations · {meta['method']} {meta['stream']} {flags}".rstrip(), "",
                  f"Subset weights: {text}. Intervals: {summary.get('ci_policy')}."]
        if "†" in flags:
            lines.append("† These ablations inherit the fused record's test tuning: not clean "
                         "test results.")
        for name, frame in tables.items():
            note = ranking_note(name, frame)
            lines += ["", f"**{name}**{f' ({note})' if note else ''}", ""] + _md_table(name, frame)
        # Named by run id: two fused records of the same stream name keep their own figure.
        figure = heatmap(meta, tables, out_dir / f"ablation-{meta['run_id']}.png")
        if figure is not None:
            figures.append(figure)
            lines += ["", f"![ablation heatmap]({figure.name})"]
    return lines, figures


def rich_section(metas: Iterable[dict[str, Any]], split: str, console: Console) -> None:
    for meta in fused_metas(metas):
        for name, frame in _read_tables(meta).items():
            console.print(ablation_rich(name, frame, record_flags(meta, split), _policy(meta)))
