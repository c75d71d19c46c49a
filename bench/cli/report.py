"""`slrbench report`: tables of a dataset's stored records (`slrbench.report`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from slrbench.cli.common import (
    ResultsOption,
    check_cache,
    console,
    open_store,
    output_dir,
    split_list,
)
from slrbench.errors import SlrbenchError


def report(
    dataset: Annotated[str, typer.Option(help="Dataset name.")],
    split: Annotated[
        str, typer.Option(help="Split to report (the reported split is test).")
    ] = "test",
    results: ResultsOption = None,
    out: Annotated[
        Path | None, typer.Option(help="Output folder (default ./reports or $SLRBENCH_REPORTS).")
    ] = None,
    formats: Annotated[str, typer.Option(
        "--format", help="Comma-separated: md, csv, latex, html.")] = "md,csv,html",
) -> None:
    """Tabulate the stored records of a dataset: rich table, Markdown, CSV, LaTeX and HTML."""
    from slrbench.datasets.registry import REGISTRY
    from slrbench.report import REPORT_FORMATS, build_report
    from slrbench.report.summary import write_summary

    chosen = split_list(formats, "--format") or []
    if not chosen or any(f not in REPORT_FORMATS for f in chosen):
        raise SlrbenchError(
            f"--format: found '{formats}', expected a comma-separated subset of "
            f"{', '.join(REPORT_FORMATS)}"
        )
    store, out_dir = open_store(results, writable=False), output_dir(out)
    if dataset in REGISTRY and REGISTRY[dataset].synthetic:
        check_cache()  # the minimal-pair table reads (or generates) SynthSign there
    written = build_report(store, dataset, split, out_dir, chosen, console)
    written += write_summary(store, out_dir, split)  # when several datasets have records
    for path in written:
        console.print(f"wrote {path}")
