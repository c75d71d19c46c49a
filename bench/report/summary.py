"""The cross-dataset page: each method's best test P-I@1 on every dataset with records, with its
marks (docs/evaluation.md#report-figures). Written beside the per-dataset reports when the store
holds records of two or more datasets."""

from __future__ import annotations

from pathlib import Path

from slrbench.report.html import markdown_to_html
from slrbench.report.seeds import group_seeds
from slrbench.store.atomic import atomic_write_text
from slrbench.store.record_store import RecordStore

SUMMARY_STEM = "summary"


def best_by_method(store: RecordStore, split: str = "test") -> dict[str, dict[str, str]]:
    """method -> dataset -> "value marks (stream)" of the best row by P-I@1, rows as the
    dataset's report has them: several seeds of one configuration pooled, compared by their
    mean and shown as mean ± std, so the page never picks a method's luckiest seed."""
    from slrbench.report.tables import latest_records

    configs = {str(row["run_id"]): str(row["config_sha256"])
               for row in store.find() if row.get("config_sha256")}
    table: dict[str, dict[str, str]] = {}
    for dataset in sorted({str(row["dataset"]) for row in store.find(split=split)}):
        best: dict[str, tuple[float, str]] = {}  # method -> (mean, cell)
        metas = [record.meta for record in latest_records(store, dataset, split)]
        for group in group_seeds(metas, configs):
            spread = group.spread("pi@1")
            if spread is None:
                continue
            method = str(group.first["method"])
            if method in best and spread.mean <= best[method][0]:
                continue
            flags = group.flags(split)
            shown = f"{100 * spread.mean:.2f}"
            if spread.std is not None:
                shown += f" ± {100 * spread.std:.2f} (n={spread.n})"
            best[method] = (spread.mean, f"{shown}{' ' + flags if flags else ''} "
                                         f"({group.first['stream']})")
        for method, (_, cell) in best.items():
            table.setdefault(method, {})[dataset] = cell
    return table


def summary_markdown(table: dict[str, dict[str, str]], split: str = "test") -> str:
    datasets = sorted({d for cells in table.values() for d in cells})
    lines = [f"# Summary across datasets — {split} split", "",
             f"Each method's best {split} P-I@1 (%) per dataset, its marks and the stream or "
             "fusion that reached it (several seeds: mean ± std over them); per-dataset reports "
             "beside this page have the intervals and the rest.", "",
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
