"""`slrbench sweep`: train the grid methods x datasets x seeds (x streams) on an engine, skip what
is stored, then fuse each method per seed and write the reports (`slrbench.sweep`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from slrbench.cli.common import (
    ResultsOption,
    bootstrap_config,
    check_cache,
    console,
    open_store,
    output_dir,
    split_list,
)
from slrbench.errors import MAX_EPOCHS, MAX_SEED, SlrbenchError, check_range

MAX_RETRIES = 10


def sweep(
    methods: Annotated[str, typer.Option(
        help="Comma list of methods, or all (see `slrbench methods`).")],
    datasets: Annotated[str, typer.Option(
        help="Comma list of datasets (see `slrbench datasets`; real ones prepared first).")],
    seeds: Annotated[str, typer.Option(help="Comma list of training seeds.")] = "0",
    engine: Annotated[str, typer.Option(
        help="local (this process, one training after another) or ray (the ray extra).")
    ] = "local",
    address: Annotated[str | None, typer.Option(
        help="A running Ray cluster (e.g. auto or ray://host:10001); default: a local Ray "
        "instance started for the sweep.")] = None,
    workers: Annotated[int | None, typer.Option(
        help="Trainings at once on a local Ray instance (default: usable cores / threads).")
    ] = None,
    threads: Annotated[int, typer.Option(help="Torch threads (CPUs) per training.")] = 1,
    retries: Annotated[int, typer.Option(
        help="Times a failed training is tried again (bad input is never retried).")] = 2,
    preset: Annotated[str | None, typer.Option(help="Model preset, e.g. tiny or paper.")] = None,
    streams: Annotated[str | None, typer.Option(
        help="Comma list of streams, for each method (default: all).")] = None,
    epochs: Annotated[int | None, typer.Option(
        help="Override the presets' epoch count (methods trained by epochs).")] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="Override one config field, KEY=VALUE (one method only; see `run`).")
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N (per worker).")] = "cpu",
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for the CIs.")] = 1000,
    fuse: Annotated[bool, typer.Option(
        "--fuse/--no-fuse", help="After the grid, fuse each method and write the reports.")
    ] = True,
    out: Annotated[Path | None, typer.Option(help="Report folder (default ./reports).")] = None,
    results: ResultsOption = None,
) -> None:
    """Train a benchmark grid, each training once, on one machine or a Ray cluster."""
    from slrbench.cli.run import run_overrides
    from slrbench.datasets.registry import get_entry
    from slrbench.methods.registry import MAIN_JOB_METHODS, get_method
    from slrbench.sweep import ENGINES, SweepSettings, run_sweep
    from slrbench.sweep.engines import import_ray
    from slrbench.training import select_device
    from slrbench.training.compute import usable_cores

    method_names = (list(MAIN_JOB_METHODS) if methods == "all"
                    else split_list(methods, "--methods") or [])
    for name in method_names:
        get_method(name)
    dataset_names = split_list(datasets, "--datasets") or []
    for name in dataset_names:
        get_entry(name)
    seed_list = [_seed(text) for text in split_list(seeds, "--seeds") or []]
    if engine not in ENGINES:
        raise SlrbenchError(f"--engine: found {engine!r}; expected one of {', '.join(ENGINES)}")
    if engine == "ray":
        import_ray()  # not installed: say how, before anything is planned
    elif address is not None or workers is not None:
        raise SlrbenchError("--address/--workers: found with --engine local; expected "
                            "--engine ray")
    check_range("--threads", threads, 1, 1024)
    check_range("--retries", retries, 0, MAX_RETRIES)
    if workers is not None:
        check_range("--workers", workers, 1, 4096)
    if epochs is not None:
        check_range("--epochs", epochs, 1, MAX_EPOCHS)
    overrides = run_overrides(set_ or [], len(method_names), epochs)
    select_device(device)
    store = open_store(results)
    reports = output_dir(out) if fuse else None
    check_cache()
    settings = SweepSettings(results=str(Path(store.root).resolve()), preset=preset,
                             overrides=overrides, device=device, threads=threads,
                             bootstrap=bootstrap_config(bootstrap))
    stream_list = split_list(streams, "--streams")
    outcome = run_sweep(
        list(dict.fromkeys(method_names)), list(dict.fromkeys(dataset_names)),
        list(dict.fromkeys(seed_list)), tuple(stream_list) if stream_list else None, settings,
        engine=engine, address=address,
        workers=workers or max(1, usable_cores() // threads), retries=retries, fuse=fuse,
        reports_root=reports, console=console)
    for path in outcome.reports:
        console.print(f"wrote {path}")
    console.print("done: " + ", ".join(f"{k} {v:.0f} s" for k, v in outcome.seconds.items()))
    if outcome.failures:
        console.print(f"[red]{len(outcome.failures)} training(s) failed; run the same command "
                      "again to retry them (stored ones are skipped)[/red]")
        raise typer.Exit(1)


def _seed(text: str) -> int:
    try:
        seed = int(text)
    except ValueError:
        raise SlrbenchError(f"--seeds: found {text!r}; expected integers, e.g. 0,1,2") from None
    check_range("--seeds", seed, 0, MAX_SEED)
    return seed
