"""`slrbench datasets [NAME]`: the registry, and what is available locally."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from slrbench.cli.common import console
from slrbench.errors import SlrbenchError

DESCRIBED_FIELDS = ("title", "language", "num_classes", "signers", "modalities",
                    "distributed_as", "selection", "license", "notes")


def datasets(
    name: Annotated[str | None, typer.Argument(help="Describe one dataset.")] = None,
    figure: Annotated[
        Path | None, typer.Option(help="SynthSign only: write a PNG showing a few samples.")
    ] = None,
) -> None:
    """List the datasets, or describe one and what is available locally."""
    from slrbench.datasets.registry import REGISTRY, get_entry, load_dataset, local_status

    if name is None:
        table = Table(title="Datasets",
                      caption="`slrbench datasets NAME` for selection split, licence, notes")
        table.add_column("name", no_wrap=True)
        table.add_column("K", justify="right")
        table.add_column("train / val / test", no_wrap=True)
        table.add_column("signer-indep.")
        table.add_column("modalities")
        table.add_column("local")
        for entry in REGISTRY.values():
            sizes = "/".join("-" if v is None else f"{v:,}" for v in entry.split_sizes.values())
            table.add_row(
                entry.name,
                str(entry.num_classes),
                "generated" if entry.synthetic else sizes,
                {True: "yes", False: "no", None: "?"}[entry.signer_independent],
                ", ".join(entry.modalities),
                "built in" if entry.synthetic else local_status(entry.name),
            )
        console.print(table)
        return

    entry = get_entry(name)
    for field_name in DESCRIBED_FIELDS:
        value = getattr(entry, field_name)
        if isinstance(value, tuple):
            value = ", ".join(value)
        if value:
            console.print(f"[bold]{field_name}[/bold]: {value}")
    console.print(f"[bold]local[/bold]: {local_status(name)}")
    if entry.synthetic:
        from slrbench.datasets.synthsign import SynthSign

        dataset = load_dataset(name)
        assert isinstance(dataset, SynthSign)  # load_dataset builds SynthSign for synthetic entries
        console.print(dataset.describe(), highlight=False, markup=False, soft_wrap=True)
        if figure is not None:
            from slrbench.datasets.synthsign.figure import plot_samples

            plot_samples(dataset, figure)
            console.print(f"figure written to {figure}")
    elif figure is not None:
        raise SlrbenchError(
            f"--figure: only SynthSign can be drawn without data; '{name}' is a real dataset"
        )
