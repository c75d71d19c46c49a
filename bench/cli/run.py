"""`slrbench run`: train a method's streams on a dataset (`slrbench.training.runner`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from slrbench.cli.common import ResultsOption, bootstrap_config, console, open_store, split_list
from slrbench.errors import SlrbenchError

if TYPE_CHECKING:
    from slrbench.training import StreamOutcome


def run(
    method: Annotated[str, typer.Option(help="Method name (see `slrbench methods`).")],
    dataset: Annotated[str, typer.Option(help="Dataset name (see `slrbench datasets`).")],
    preset: Annotated[str | None, typer.Option(help="Model preset, e.g. tiny or paper.")] = None,
    streams: Annotated[
        str | None, typer.Option(help="Comma-separated streams (default: all).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Training seed (torch, numpy, python).")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    epochs: Annotated[int | None, typer.Option(help="Override the preset's epoch count.")] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue an interrupted stream.")
    ] = False,
    restart: Annotated[
        bool, typer.Option("--restart", help="Discard an interrupted stream.")
    ] = False,
    rerun: Annotated[
        bool, typer.Option("--rerun", help="Train again even if records exist.")
    ] = False,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for the CIs.")] = 1000,
    results: ResultsOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
) -> None:
    """Train each stream, select on val, write val and test records."""
    from slrbench.datasets.registry import load_dataset
    from slrbench.methods.registry import get_method
    from slrbench.training import RunRequest, select_device
    from slrbench.training import run as run_request

    adapter = get_method(method)
    chosen_preset = preset or adapter.spec.default_preset
    adapter.check_preset(chosen_preset)
    chosen_streams = adapter.check_streams(split_list(streams))
    if epochs is not None and epochs < 1:
        raise SlrbenchError(f"--epochs: found {epochs}, expected a positive integer")
    bootstrap_settings = bootstrap_config(bootstrap)
    if resume and restart:
        raise SlrbenchError("--resume and --restart: found both, expected at most one")
    torch_device = select_device(device)
    data = load_dataset(dataset)
    overrides = {"train.epochs": epochs} if epochs is not None else {}
    request = RunRequest(
        method=adapter,
        dataset=data,
        preset=chosen_preset,
        streams=chosen_streams,
        seed=seed,
        device=torch_device,
        overrides=overrides,
        resume=resume,
        restart=restart,
        rerun=rerun,
        bootstrap=bootstrap_settings,
        progress=not quiet,
    )
    store = open_store(results)
    console.print(
        f"[bold]{adapter.spec.name}[/bold] ({chosen_preset}) on [bold]{data.spec.name}[/bold]: "
        f"streams {', '.join(chosen_streams)}, seed {seed}, device {torch_device}"
    )
    outcomes = run_request(request, store, console)
    console.print(outcome_table(outcomes))
    console.print(
        f"records in {store.root}/runs; `slrbench report --dataset {data.spec.name}` tabulates them"
    )


def outcome_table(outcomes: Iterable[StreamOutcome]) -> Table:
    """Summary printed at the end of `slrbench run`."""
    from slrbench.report.tables import format_metric

    table = Table(title="run summary")
    for column in ("stream", "status", "val P-I@1", "test P-I@1 [95 % CI]", "test P-C@1",
                   "test record"):
        table.add_column(column)
    for outcome in outcomes:
        val, test = outcome.metrics.get("val", {}), outcome.metrics.get("test", {})
        table.add_row(
            outcome.stream,
            outcome.status,
            format_metric(val.get("pi@1"), "pi@1").split(" ")[0],
            format_metric(test.get("pi@1"), "pi@1"),
            format_metric(test.get("pc@1"), "pc@1").split(" ")[0],
            outcome.run_ids.get("test", "–"),
        )
    return table
