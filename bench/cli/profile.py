"""`slrbench profile`: parameters, GFLOPs, throughput and memory of a method
(`slrbench.profiling`)."""

from __future__ import annotations

from typing import Annotated

import typer

from slrbench.cli.common import ResultsOption, console, open_store
from slrbench.errors import check_range


def profile(
    method: Annotated[str, typer.Option(help="Method name (see `slrbench methods`).")],
    preset: Annotated[str | None, typer.Option(help="Preset (default: the method's).")] = None,
    dataset: Annotated[str, typer.Option(
        help="Dataset whose number of classes sets the head.")] = "synthsign-tiny",
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "cpu",
    threads: Annotated[int, typer.Option(help="Torch threads while timing.")] = 1,
    steps: Annotated[int, typer.Option(help="Timed steps (median) after one warm-up.")] = 5,
    results: ResultsOption = None,
) -> None:
    """Profile a method's models: parameters, GFLOPs/sample, samples/s, peak memory."""
    from rich.table import Table

    from slrbench.datasets.registry import get_entry
    from slrbench.datasets.synthsign import SynthSign, SynthSignConfig
    from slrbench.methods.registry import get_method
    from slrbench.profiling import ProfileRequest, store_profile
    from slrbench.profiling import profile as run_profile
    from slrbench.training import select_device
    from slrbench.training.compute import check_counts

    adapter = get_method(method)
    chosen = preset or adapter.spec.default_preset
    adapter.check_preset(chosen)
    entry = get_entry(dataset)
    check_counts(None, threads)
    check_range("--steps", steps, 1, 1000)
    store = open_store(results)
    # The configuration (input shape, recipe) needs a dataset spec: SynthSign's metadata (no
    # arrays are generated); a real dataset lends only its number of classes.
    source = entry if entry.synthetic else get_entry("synthsign-tiny")
    spec = SynthSign(SynthSignConfig.preset(source.synthsign_preset or "tiny", seed=0)).spec
    data = run_profile(ProfileRequest(adapter, chosen, spec, entry.num_classes, dataset,
                                      select_device(device), threads, steps))
    path = store_profile(store.root, data)
    table = Table(title=f"{method} · {chosen} · K={entry.num_classes} · {data['device']} · "
                        f"{threads} thread(s)")
    for column in ("stream", "params", "GFLOPs/sample", "train samples/s", "infer samples/s",
                   "peak MB"):
        table.add_column(column)
    for stream, row in data["streams"].items():
        if "same_as" in row:
            table.add_row(stream, f"= {row['same_as']}", "", "", "", "")
            continue
        table.add_row(stream, f"{row['params']:,}", f"{row['gflops_per_sample']:g}",
                      *(("–" if row[k] is None else f"{row[k]:g}") for k in (
                          "train_samples_per_s", "infer_samples_per_s", "peak_memory_mb")))
    console.print(table)
    console.print(f"wrote {path}")
