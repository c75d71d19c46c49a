"""`slrbench import`: bring a score file computed elsewhere into the store
(`slrbench.importers`, docs/importing.md)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from slrbench.cli.common import ResultsOption, bootstrap_config, console, open_store


def import_scores(
    file: Annotated[Path, typer.Argument(help="The score file to import.")],
    format: Annotated[str, typer.Option(
        "--format", help="samslr, pyskl, mmaction, nlaslr, npz or csv.")],
    dataset: Annotated[str, typer.Option(help="Dataset name (see `slrbench datasets`).")],
    split: Annotated[str, typer.Option(help="The split the file scores (val or test).")],
    method: Annotated[str, typer.Option(help="Method name the record is filed under.")],
    stream: Annotated[str, typer.Option(help="Stream name (j, b, rgb, ...).")],
    labels: Annotated[Path | None, typer.Option(
        help="samslr: the (names, labels) label pickle.")] = None,
    ids: Annotated[Path | None, typer.Option(
        help="pyskl / mmaction: ordered ids (text, one per line) or the annotation pickle.")
    ] = None,
    selection_split: Annotated[str, typer.Option(
        help="Split that chose the checkpoint upstream: val, test or unknown.")] = "unknown",
    score_kind: Annotated[str | None, typer.Option(
        help="logits, probs or log_probs (default: the format's).")] = None,
    head: Annotated[str, typer.Option(
        help="nlaslr: the output to import.")] = "ensemble_last",
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for the CIs.")] = 1000,
    results: ResultsOption = None,
) -> None:
    """Import a score file as a record: ids matched to the registry, rows aligned by id."""
    from slrbench.importers import ImportRequest
    from slrbench.importers import import_scores as run_import
    from slrbench.marks import record_flags

    request = ImportRequest(
        path=file, format=format, dataset=dataset, split=split, method=method, stream=stream,
        labels=labels, ids=ids, selection_split=selection_split, score_kind=score_kind,
        head=head, command=shlex.join(["slrbench", *sys.argv[1:]]),
        bootstrap=bootstrap_config(bootstrap))
    request.check()  # bad options fail before the store is touched
    record = run_import(request, open_store(results))
    top1 = record.metrics["pi@1"]["value"]
    flags = record_flags(record.meta, record.split)
    missing = len(record.meta["missing_ids"])
    console.print(
        f"imported {record.n} {split} rows of {method}/{stream} on {dataset}"
        + (f" ({missing} official ids absent)" if missing else "")
        + f": P-I@1 {100 * top1:.2f} %{' ' + flags if flags else ''}; record {record.run_id}",
        soft_wrap=True)
