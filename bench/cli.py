"""The `slrbench` command line (Typer + rich).

User errors surface as one line on stderr and exit code 2 (`SlrbenchError`); everything else
is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from slrbench import fusion_cli
from slrbench.errors import EXIT_BAD_INPUT, SlrbenchError

app = typer.Typer(
    name="slrbench",
    help="Benchmark and leaderboard harness for isolated sign language recognition.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
error_console = Console(stderr=True)
# Typer >= 0.2x vendors click; reach its ClickException through a public subclass.
ClickException = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")

ResultsOption = Annotated[
    Optional[Path], typer.Option("--results", help="Record store (default ./results or $SLRBENCH_RESULTS).")
]


def _store(results: Path | None):  # noqa: ANN202 - imported lazily to keep `--help` fast
    from slrbench.paths import results_dir
    from slrbench.store import RecordStore

    return RecordStore(results or results_dir())


def _split_list(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


@app.command()
def datasets(
    name: Annotated[Optional[str], typer.Argument(help="Describe one dataset.")] = None,
    figure: Annotated[
        Optional[Path], typer.Option(help="SynthSign only: write a PNG showing a few samples.")
    ] = None,
) -> None:
    """List the datasets, or describe one and what is available locally."""
    from slrbench.datasets.registry import REGISTRY, get_entry, load_dataset, local_status

    if name is None:
        table = Table(title="Datasets", caption="`slrbench datasets NAME` for selection split, licence, notes")
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
    for field_name in ("title", "language", "num_classes", "signers", "modalities", "distributed_as", "selection", "license", "notes"):
        value = getattr(entry, field_name)
        if isinstance(value, tuple):
            value = ", ".join(value)
        if value:
            console.print(f"[bold]{field_name}[/bold]: {value}")
    console.print(f"[bold]local[/bold]: {local_status(name)}")
    if entry.synthetic:
        dataset = load_dataset(name)
        console.print(dataset.describe(), highlight=False, markup=False, soft_wrap=True)
        if figure is not None:
            from slrbench.datasets.synthsign.figure import plot_samples

            plot_samples(dataset, figure)
            console.print(f"figure written to {figure}")
    elif figure is not None:
        raise SlrbenchError(f"--figure: only SynthSign can be drawn without data; '{name}' is a real dataset")


@app.command()
def methods(
    name: Annotated[Optional[str], typer.Argument(help="Describe one method.")] = None,
) -> None:
    """List the methods, or describe one: streams, presets, divergences, published numbers."""
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
                ", ".join(spec.streams),
                ", ".join(spec.presets),
                "reconstruction ◊" if spec.reconstruction else "faithful",
            )
        console.print(table)
        return

    from slrbench.report import describe_method

    describe_method(get_method(name), console)


@app.command()
def run(
    method: Annotated[str, typer.Option(help="Method name (see `slrbench methods`).")],
    dataset: Annotated[str, typer.Option(help="Dataset name (see `slrbench datasets`).")],
    preset: Annotated[Optional[str], typer.Option(help="Model preset, e.g. tiny or paper.")] = None,
    streams: Annotated[Optional[str], typer.Option(help="Comma-separated streams (default: all).")] = None,
    seed: Annotated[int, typer.Option(help="Training seed (torch, numpy, python).")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    epochs: Annotated[Optional[int], typer.Option(help="Override the preset's epoch count.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted stream.")] = False,
    restart: Annotated[bool, typer.Option("--restart", help="Discard an interrupted stream.")] = False,
    rerun: Annotated[bool, typer.Option("--rerun", help="Train again even if records exist.")] = False,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for the CIs.")] = 1000,
    results: ResultsOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
) -> None:
    """Train each stream, select on val, write val and test records."""
    from slrbench.datasets.registry import load_dataset
    from slrbench.methods.registry import get_method
    from slrbench.metrics import BootstrapConfig
    from slrbench.runner import RunRequest
    from slrbench.runner import run as run_request
    from slrbench.training import select_device

    adapter = get_method(method)
    chosen_preset = preset or adapter.spec.default_preset
    adapter.check_preset(chosen_preset)
    chosen_streams = adapter.check_streams(_split_list(streams))
    if epochs is not None and epochs < 1:
        raise SlrbenchError(f"--epochs: found {epochs}, expected a positive integer")
    if bootstrap < 0:
        raise SlrbenchError(f"--bootstrap: found {bootstrap}, expected 0 or more resamples")
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
        bootstrap=BootstrapConfig(resamples=bootstrap, seed=0) if bootstrap else None,
        progress=not quiet,
    )
    store = _store(results)
    console.print(
        f"[bold]{adapter.spec.name}[/bold] ({chosen_preset}) on [bold]{data.spec.name}[/bold]: "
        f"streams {', '.join(chosen_streams)}, seed {seed}, device {torch_device}"
    )
    outcomes = run_request(request, store, console)
    from slrbench.report import outcome_table

    console.print(outcome_table(outcomes))
    console.print(f"records in {store.root}/runs; `slrbench report --dataset {data.spec.name}` tabulates them")


@app.command()
def report(
    dataset: Annotated[str, typer.Option(help="Dataset name.")],
    split: Annotated[str, typer.Option(help="Split to report (the reported split is test).")] = "test",
    results: ResultsOption = None,
    out: Annotated[
        Optional[Path], typer.Option(help="Output folder (default ./reports or $SLRBENCH_REPORTS).")
    ] = None,
    format: Annotated[str, typer.Option("--format", help="Comma-separated: md, csv.")] = "md,csv",
) -> None:
    """Tabulate the stored records of a dataset: rich table, Markdown and CSV."""
    from slrbench.datasets.registry import get_entry
    from slrbench.paths import reports_dir
    from slrbench.report import REPORT_FORMATS, build_report

    get_entry(dataset)
    formats = _split_list(format) or []
    unknown = [f for f in formats if f not in REPORT_FORMATS]
    if unknown or not formats:
        raise SlrbenchError(
            f"--format: found '{format}', expected a comma-separated subset of {', '.join(REPORT_FORMATS)}"
        )
    written = build_report(_store(results), dataset, split, out or reports_dir(), formats, console)
    for path in written:
        console.print(f"wrote {path}")


# `slrbench fuse` lives in its own module to keep this file small.
fusion_cli.register(app)


def main() -> None:
    """Console entry point: one-line errors and exit code 2 for bad input."""
    try:
        app(standalone_mode=False)
    except SlrbenchError as error:
        error_console.print(f"[red]error:[/red] {error}", highlight=False, soft_wrap=True)
        sys.exit(EXIT_BAD_INPUT)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        error_console.print("interrupted: run the same command with --resume to continue")
        sys.exit(130)


if __name__ == "__main__":
    main()
