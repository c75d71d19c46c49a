"""`slrbench prepare --dataset D --from PATH`: read a user's copy of a real dataset, check it
against the registry and write the prepared copy training reads (docs/datasets/prepare.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from slrbench.cli.common import console
from slrbench.errors import SlrbenchError


def prepare(
    dataset: Annotated[str, typer.Option(help="Registry name, e.g. wlasl100 (see `slrbench "
                                         "datasets`).")],
    source: Annotated[Path, typer.Option("--from", help="The copy to read: a folder or file "
                                         "in one of the supported formats.")],
    format_: Annotated[str | None, typer.Option(
        "--format", help="samslr, pyskl, nlaslr, pose, video (default: detected from the "
        "files).")] = None,
    videos: Annotated[Path | None, typer.Option(
        help="A folder of the raw videos (or frame folders) of the same samples, for the video "
        "methods.")] = None,
    drop_invalid: Annotated[bool, typer.Option(
        "--drop-invalid", help="Drop samples with NaN / infinite / empty keypoints or no video "
        "(counted in the report) instead of refusing the copy.")] = False,
) -> None:
    """Check a dataset copy against the registry and write the prepared copy."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from slrbench.datasets.prepare import prepare as build
    from slrbench.datasets.readers import detect_format, read_copy
    from slrbench.datasets.registry import get_entry, prepared_dir

    entry = get_entry(dataset)
    if entry.synthetic:
        raise SlrbenchError(f"--dataset {dataset}: SynthSign is generated, not prepared; "
                            "expected a real dataset")
    if not source.exists():
        raise SlrbenchError(f"--from {source}: no such file or folder; expected a copy of "
                            f"{dataset}")
    fmt = format_ or detect_format(source)
    copy = read_copy(fmt, source, dataset)
    video_copy = read_copy("video", videos, dataset) if videos is not None else None
    total = sum(len(s.ids) for s in copy.splits.values() if s.pose is not None)
    with Progress(TextColumn("checking keypoints"), BarColumn(), MofNCompleteColumn(),
                  console=console, transient=True, disable=total == 0) as bar:
        task = bar.add_task("check", total=total)
        try:
            result = build(copy, dataset, prepared_dir(dataset), drop_invalid, video_copy,
                           progress=lambda: bar.advance(task))
        except SlrbenchError as error:  # name the copy the finding is about
            message = str(error)
            raise SlrbenchError(message if str(source) in message
                                else f"--from {source} ({fmt}): {message}") from None
    console.print(f"[bold]{dataset}[/bold] from {source} ({fmt})")
    for line in result.report.lines():
        console.print(f"  {line}", highlight=False, markup=False)
    console.print(f"prepared copy: {result.folder}")
