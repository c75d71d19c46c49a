"""A method's card: the facts `slrbench methods NAME` prints and docs/methods/<name>.md embeds.

Both renderings come from `card_facts`, so the terminal and the documentation cannot drift
apart; a test compares the block between the markers of each card with `card_markdown`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from slrbench.marks import FLAG_NOTES, UPPER_BOUND, legend, stream_label
from slrbench.methods.base import MethodAdapter
from slrbench.metrics import METRIC_LABELS

PUBLISHED_COLUMNS = ("dataset", "setting", "metric", "value", "tuned on", "source", "flags")


def generated_markers(name: str) -> tuple[str, str]:
    """The comment lines that enclose the generated block in docs/methods/<name>.md."""
    return (f"<!-- BEGIN GENERATED: slrbench methods {name} -->",
            "<!-- END GENERATED -->")


@dataclass(frozen=True)
class CardFacts:
    name: str
    title: str
    about: tuple[tuple[str, str], ...]  # (label, value) lines
    summary: str
    presets: tuple[dict[str, str], ...]
    fusion: str | None
    divergences: tuple[str, ...]
    published: tuple[tuple[str, ...], ...]  # rows in PUBLISHED_COLUMNS order


def card_facts(adapter: MethodAdapter) -> CardFacts:
    spec = adapter.spec
    fusion = None
    if spec.fusion is not None:
        recipe = spec.fusion
        fusion = (f"{recipe.strategy} in {recipe.score_space} space, weights "
                  f"{recipe.weights_for('default')} ({recipe.source})"
                  + (" — tuned on the reported split upstream †" if recipe.test_tuned else ""))
    return CardFacts(
        name=spec.name,
        title=spec.title,
        about=(
            ("paper", spec.paper),
            ("upstream", spec.upstream),
            ("modalities", ", ".join(spec.modalities)),
            ("streams", ", ".join(stream_label(s, spec.upper_bound_streams)
                                  for s in spec.streams)),
            ("fidelity", spec.fidelity),
            *([(UPPER_BOUND, FLAG_NOTES[UPPER_BOUND])] if spec.upper_bound_streams else []),
        ),
        summary=spec.summary,
        presets=tuple({k: str(v) for k, v in row.items()} for row in adapter.describe_presets()),
        fusion=fusion,
        divergences=spec.divergences,
        published=tuple(
            (r.dataset, r.setting, METRIC_LABELS.get(r.metric, r.metric), f"{r.value:.2f}",
             r.tuned_on, r.source, r.flags)
            for r in spec.published
        ),
    )


def print_card(adapter: MethodAdapter, console: Console) -> None:
    """`slrbench methods NAME`."""
    facts = card_facts(adapter)
    console.print(f"[bold]{facts.name}[/bold] — {facts.title}")
    for label, value in facts.about:
        console.print(f"{label}: {value}", highlight=False)
    if facts.summary:
        console.print(facts.summary)
    if facts.presets:
        console.print(_rich_table("presets", tuple(facts.presets[0]),
                                  [tuple(row.values()) for row in facts.presets]))
    if facts.fusion:
        console.print(f"default fusion: {facts.fusion}", highlight=False)
    if facts.divergences:
        console.print("[bold]documented divergences from upstream[/bold]")
        for item in facts.divergences:
            console.print(f"  • {item}", highlight=False)
    if facts.published:
        console.print(_rich_table("published numbers (%)", PUBLISHED_COLUMNS, facts.published))
        for line in _published_legend(facts):
            console.print(f"  {line}", highlight=False)


def _published_legend(facts: CardFacts) -> list[str]:
    """What the marks and source markers of the published table mean."""
    return legend("".join(row[-1] for row in facts.published),
                  [row[PUBLISHED_COLUMNS.index("source")] for row in facts.published])


def _rich_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[str]]) -> Table:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    return table


def _markdown_table(columns: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    return [line(columns), "|" + " --- |" * len(columns), *(line(row) for row in rows)]


def card_markdown(adapter: MethodAdapter) -> str:
    """The generated block of docs/methods/<name>.md (without the marker lines)."""
    facts = card_facts(adapter)
    lines = [f"**{facts.name}** — {facts.title}", ""]
    lines += [f"- {label}: {value}" for label, value in facts.about]
    if facts.summary:
        lines += ["", facts.summary]
    if facts.presets:
        lines += ["", "### Presets and parameter counts", ""]
        lines += _markdown_table(tuple(facts.presets[0]),
                                 [tuple(r.values()) for r in facts.presets])
    if facts.fusion:
        lines += ["", "### Default fusion recipe", "", facts.fusion]
    if facts.divergences:
        lines += ["", "### Documented divergences from upstream", ""]
        lines += [f"- {item}" for item in facts.divergences]
    if facts.published:
        lines += ["", "### Published numbers with sources", "", "Values in %."]
        lines += ["", *_markdown_table(PUBLISHED_COLUMNS, facts.published)]
        lines += ["", *(f"- {line}" for line in _published_legend(facts))]
    return "\n".join(lines) + "\n"
