"""The cross-dataset page: each method's best test P-I@1 on every dataset with records, with its
marks (docs/evaluation.md#report-figures). Written beside the per-dataset reports when the store
holds records of two or more datasets."""

from __future__ import annotations

from pathlib import Path

from slrbench.marks import record_flags
from slrbench.report.html import markdown_to_html
from slrbench.store.atomic import atomic_write_text
from slrbench.store.record_store import RecordStore

SUMMARY_STEM = "summary"


def best_by_method(store: RecordStore, split: str = "test") -> dict[str, dict[str, str]]:
    """method -> dataset -> "value marks (stream)" of the best record by P-I@1."""
    best: dict[tuple[str, str], tuple[float, str]] = {}  # (method, dataset) -> (value, run id)
    for row in store.find(split=split):
        value = row.get("pi@1")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            key = (str(row["method"]), str(row["dataset"]))
            if key not in best or float(value) > best[key][0]:
                best[key] = (float(value), str(row["run_id"]))
    table: dict[str, dict[str, str]] = {}
    for (method, dataset), (value, run_id) in best.items():
        record = store.load_checked(run_id)  # a number on the page is checked like any other
        flags = record_flags(record.meta, split)
        table.setdefault(method, {})[dataset] = (
            f"{100 * value:.2f}{' ' + flags if flags else ''} ({record.stream})")
    return table


def summary_markdown(table: dict[str, dict[str, str]], split: str = "test") -> str:
    datasets = sorted({d for cells in table.values() for d in cells})
    lines = [f"# Summary across datasets — {split} split", "",
             f"Each method's best {split} P-I@1 (%) per dataset, its marks and the stream or "
             "fusion that reached it; per-dataset reports beside this page have the intervals "
             "and the rest.", "",
             "| method | " + " | ".join(datasets) + " |", "|" + " --- |" * (len(datasets) + 1)]
    for method in sorted(table):
        lines.append(f"| {method} | "
                     + " | ".join(table[method].get(d, "–") for d in datasets) + " |")
    return "\n".join(lines) + "\n"


def write_summary(store: RecordStore, out_root: Path, split: str = "test") -> list[Path]:
    """summary.md and summary.html when two or more datasets have records; else nothing."""
    table = best_by_method(store, split)
    if len({d for cells in table.values() for d in cells}) < 2:
        return []
    text = summary_markdown(table, split)
    root = Path(out_root)
    stem = SUMMARY_STEM if split == "test" else f"{SUMMARY_STEM}-{split}"
    return [atomic_write_text(root / f"{stem}.md", text),
            atomic_write_text(root / f"{stem}.html",
                              markdown_to_html(text, f"slrbench · summary · {split}", root))]
