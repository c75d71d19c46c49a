"""The leaderboard as a LaTeX table (booktabs), ready for a paper: one row per record, values in
percent with their 95 % interval in a smaller font, marks after the row name. Records that differ
only in their seed share a row: mean ± sample standard deviation over the seeds
(`slrbench.report.seeds`)."""

from __future__ import annotations

from typing import Any

from slrbench.marks import FLAG_NOTES
from slrbench.metrics import METRIC_LABELS
from slrbench.report.cells import preset_label
from slrbench.report.seeds import SeedGroup

COLUMNS = ("pi@1", "pi@5", "pc@1", "pc@5")
_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
            "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
            "^": r"\textasciicircum{}"}


# The marks in math mode (pdflatex has no glyph for the Unicode ones in text).
MARKS = {"†": r"\dagger", "‡": r"\ddagger", "*": "*", "◊": r"\diamond", "⊙": r"\odot",
         "?": "?", "↑": r"\uparrow"}


def marks(flags: str) -> str:
    return "".join(MARKS[flag] for flag in flags)


def escape(text: str) -> str:
    """Text as LaTeX prints it literally."""
    return "".join(_SPECIAL.get(ch, ch) for ch in text)


def _cell(metric: Any) -> str:
    if not isinstance(metric, dict) or metric.get("value") is None:
        return "--"
    value = f"{100 * metric['value']:.2f}"
    if metric.get("ci_low") is None or metric.get("ci_high") is None:
        return value
    return (f"{value} {{\\scriptsize [{100 * metric['ci_low']:.1f}, "
            f"{100 * metric['ci_high']:.1f}]}}")


def _spread_cell(group: SeedGroup, key: str) -> str:
    spread = group.spread(key)
    if spread is None:
        return "--"
    if spread.std is None:
        return f"{100 * spread.mean:.2f}"
    return f"${100 * spread.mean:.2f} \\pm {100 * spread.std:.2f}$"


def _preset_cell(group: SeedGroup) -> str:
    label = escape(preset_label(group.first))
    return f"{label}, {len(group.metas)} seeds" if group.pooled else label


def latex_table(groups: list[SeedGroup], split: str, dataset: str) -> str:
    """A complete `table` environment (needs `\\usepackage{booktabs}`)."""
    header = " & ".join(["method", "stream", "preset",
                         *(METRIC_LABELS[k] for k in COLUMNS), "$n$"])
    lines = [
        "\\begin{table}[t]", "\\centering", "\\small",
        f"\\caption{{{escape(dataset)}, {escape(split)} split: accuracy in \\%, 95\\,\\% "
        "bootstrap intervals in brackets.}",
        "\\begin{tabular}{lll" + "r" * (len(COLUMNS) + 1) + "}", "\\toprule",
        header + " \\\\", "\\midrule",
    ]
    used = ""
    for group in groups:
        meta = group.first
        flags = group.flags(split)  # one seed: its record's marks
        used += flags
        metrics = meta.get("metrics", {})
        name = escape(meta["method"]) + (f"$^{{{marks(flags)}}}$" if flags else "")
        values = (_spread_cell(group, k) if group.pooled else _cell(metrics.get(k))
                  for k in COLUMNS)
        cells = [name, escape(meta["stream"]), _preset_cell(group), *values,
                 escape(str(group.common("n_eval")))]
        lines.append(" & ".join(cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    notes = [f"${marks(flag)}$~{escape(FLAG_NOTES[flag])}" for flag in FLAG_NOTES if flag in used]
    if any(group.pooled for group in groups):  # the bootstrap interval is per seed
        notes.append("rows over several seeds: mean $\\pm$ sample standard deviation over the "
                     "seeds, without the per-seed intervals")
    if notes:
        lines.append("\\par\\footnotesize " + "; ".join(notes) + ".")
    lines.append("\\end{table}")
    return "\n".join(lines) + "\n"
