"""`slrbench methods [NAME]`: the method registry and one method's card."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from slrbench.cli.common import console


def methods(
    name: Annotated[str | None, typer.Argument(help="Describe one method.")] = None,
) -> None:
    """List the methods, or describe one: streams, presets, divergences, published numbers."""
    from slrbench.marks import stream_label
    from slrbench.methods.registry import METHOD_NAMES, get_method

    if name is None:
        table = Table(title="Methods")
        for column in ("name", "title", "modalities", "streams", "presets", "fidelity"):
            table.add_column(column)
        for method_name in METHOD_NAMES:
            spec = get_method(method_name).spec
            table.add_row(
                spec.name,
                spec.title,
                ", ".join(spec.modalities),
                ", ".join(stream_label(s, spec.upper_bound_streams) for s in spec.streams),
                ", ".join(spec.presets),
                spec.fidelity,
            )
        console.print(table)
        return

    from slrbench.report.method_card import print_card

    print_card(get_method(name), console)
