"""`slrbench run`: train methods' streams on a dataset (`slrbench.training`); with several
methods (`--method all` or a comma list) also fuse each and write the report (`slrbench.suite`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

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

if TYPE_CHECKING:
    from slrbench.datasets.base import Dataset
    from slrbench.methods.base import MethodAdapter
    from slrbench.metrics import BootstrapConfig
    from slrbench.store import RecordStore
    from slrbench.training import StreamOutcome
    from slrbench.training.distributed import DistContext


def run(
    method: Annotated[str, typer.Option(
        help="Method name, a comma list, or all (the main job: every method, see `slrbench "
        "methods`); several methods are also fused and reported.")],
    dataset: Annotated[str, typer.Option(help="Dataset name (see `slrbench datasets`).")],
    preset: Annotated[str | None, typer.Option(help="Model preset, e.g. tiny or paper.")] = None,
    streams: Annotated[
        str | None, typer.Option(help="Comma-separated streams of one method (default: all).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Training seed (torch, numpy, python).")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    epochs: Annotated[int | None, typer.Option(
        help="Override the preset's epoch count (warm-up and steps scale with it).")] = None,
    jobs: Annotated[int | None, typer.Option(
        help="Streams trained at once, in worker processes (default: usable cores on CPU, "
        "1 on CUDA).")] = None,
    threads: Annotated[int | None, typer.Option(
        help="Torch threads per job (default: usable cores / jobs).")] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue an interrupted stream.")
    ] = False,
    restart: Annotated[
        bool, typer.Option("--restart", help="Discard an interrupted stream.")
    ] = False,
    rerun: Annotated[
        bool, typer.Option("--rerun", help="Train again even if records exist.")
    ] = False,
    init: Annotated[Path | None, typer.Option(
        help="Start from these native weights (see `slrbench import-checkpoint`); with "
        "--epochs 0 they are only evaluated.")] = None,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for the CIs.")] = 1000,
    results: ResultsOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress output.")] = False,
    data_root: Annotated[Path | None, typer.Option(
        help="A real dataset's copy to read (any `slrbench prepare` format): prepared into the "
        "cache first unless it is a prepared copy itself.")] = None,
    word_vectors: Annotated[Path | None, typer.Option(
        help="Gloss word vectors for a language-aware method (nla): a fastText .vec file, or "
        ".bin with the fasttext extra (default: the shipped GloVe 6B 50-d table).")] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="Override one field of the run config, KEY=VALUE with a dotted key "
        "(repeatable; the value read as JSON, else as text), e.g. --set "
        "language.imm=false. The record's config hash and preset label show it.")] = None,
    distributed: Annotated[bool, typer.Option(
        "--distributed", help="Train one method's streams with several processes started by "
        "torchrun, each taking its share of every batch (docs/distributed.md): torchrun "
        "--nproc_per_node N -m slrbench run ... --distributed.")] = False,
) -> None:
    """Train each stream, select on val, write val and test records."""
    from slrbench.methods.base import SolverAdapter
    from slrbench.methods.registry import MAIN_JOB_METHODS, get_method
    from slrbench.training import RunRequest, run_all, select_device
    from slrbench.training.compute import check_counts

    names = list(MAIN_JOB_METHODS) if method == "all" else split_list(method, "--method") or []
    adapters = [get_method(name) for name in dict.fromkeys(names)]
    if not adapters:
        raise SlrbenchError(f"--method: found '{method}', expected a method name, a comma "
                            "list or all")
    if streams is not None and len(adapters) > 1:
        raise SlrbenchError("--streams: found with several methods; expected one method "
                            "(stream names are per method)")
    for adapter in adapters:
        adapter.check_preset(preset or adapter.spec.default_preset)
    stream_names = split_list(streams, "--streams")
    chosen_streams = [adapter.check_streams(stream_names) for adapter in adapters]
    if init is not None:
        if len(adapters) > 1:
            raise SlrbenchError("--init: found with several methods; expected one method "
                                "(the weights fit one architecture)")
        if not init.is_file():
            raise SlrbenchError(f"--init {init}: no such file; expected a native checkpoint")
    if epochs is not None:
        check_range("--epochs", epochs, 0 if init is not None else 1, MAX_EPOCHS)
        if all(isinstance(adapter, SolverAdapter) for adapter in adapters):
            raise SlrbenchError(f"--epochs: found with method '{adapters[0].spec.name}', which "
                                "is fitted by a solver; expected a method trained by epochs")
    overrides = run_overrides(set_ or [], len(adapters), epochs)
    if word_vectors is not None:
        if len(adapters) > 1 or not adapters[0].spec.gloss_vectors:
            raise SlrbenchError(f"--word-vectors: found with method(s) "
                                f"{', '.join(a.spec.name for a in adapters)}; expected one "
                                "method that uses gloss vectors (nla)")
        overrides["language.vectors"] = str(word_vectors.expanduser().resolve())
    check_counts(jobs, threads)
    check_range("--seed", seed, 0, MAX_SEED)
    bootstrap_settings = bootstrap_config(bootstrap)
    if resume and restart:
        raise SlrbenchError("--resume and --restart: found both, expected at most one")
    torch_device = select_device(device)
    context = (_distributed_context(len(adapters), jobs, device, torch_device.type)
               if distributed else None)
    with _process_group(context):
        if context is not None:
            torch_device = context.device(torch_device.type)
            quiet = quiet or not context.is_main
            console.quiet = console.quiet or not context.is_main  # rank 0 alone reports
        store = open_store(results)  # a bad --results fails before SynthSign is generated
        data = _in_turn(context, lambda: _load(dataset, quiet, data_root),
                        lambda: _load(dataset, quiet, _prepared_root(dataset, data_root)))
        settings: dict[str, Any] = {
            "device": torch_device,
            "overrides": overrides,
            "resume": resume,
            "restart": restart,
            "rerun": rerun,
            "progress": not quiet,
        }
        console.print(f"[bold]{', '.join(a.spec.name for a in adapters)}[/bold] on "
                      f"[bold]{data.spec.name}[/bold]: seed {seed}, device {torch_device}")
        if len(adapters) > 1:
            _suite(adapters, data, store, preset, seed, settings, bootstrap_settings, jobs,
                   threads)
            return
        (adapter,), (stream_list,) = adapters, chosen_streams
        request = RunRequest(method=adapter, dataset=data,
                             preset=preset or adapter.spec.default_preset, streams=stream_list,
                             seed=seed, bootstrap=bootstrap_settings, init=init,
                             distributed=context, **settings)
        (outcomes,) = run_all([request], store, console, jobs, threads)
        console.print(outcome_table(outcomes))
        console.print(f"records in {store.root}/runs; `slrbench report --dataset "
                      f"{data.spec.name}` tabulates them")


def _distributed_context(methods: int, jobs: int | None, device: str,
                         kind: str) -> DistContext:
    """--distributed: one method, one job per process, and torchrun's environment (checked
    before anything is loaded)."""
    from slrbench.training.distributed import context_from_env

    if methods != 1:
        raise SlrbenchError("--distributed: found with several methods; expected one method")
    if jobs is not None and jobs > 1:
        raise SlrbenchError(f"--distributed: found with --jobs {jobs}; expected no --jobs (each "
                            "process trains its share of one stream at a time)")
    if kind == "cuda" and device not in ("auto", "cuda"):
        raise SlrbenchError(f"--device {device}: with --distributed each process takes "
                            "cuda:LOCAL_RANK; expected auto or cuda")
    return context_from_env(kind)


def _process_group(context: DistContext | None) -> AbstractContextManager[Any]:
    from slrbench.training.distributed import process_group

    return process_group(context) if context is not None else nullcontext()


def _in_turn(context: DistContext | None, load: Callable[[], Dataset],
             ready: Callable[[], Dataset]) -> Dataset:
    """`load` in rank 0 (it may generate or prepare the cached copy); the other ranks wait for
    it, then `ready` reads what rank 0 left."""
    if context is None:
        return load()
    if context.is_main:
        data = load()
        context.barrier()
        return data
    context.barrier()
    return ready()


def _prepared_root(name: str, data_root: Path | None) -> Path | None:
    """Where a --data-root copy is prepared once `_from_data_root` has run (None: no copy)."""
    from slrbench.datasets.prepared import META
    from slrbench.datasets.registry import prepared_dir

    if data_root is None or (data_root / META).is_file():
        return data_root
    return prepared_dir(name)


def run_overrides(items: list[str], methods: int, epochs: int | None) -> dict[str, Any]:
    """The config overrides of `run` and `sweep`: the --set items (one method only: config
    fields are per method) and --epochs as `train.epochs`."""
    overrides = config_overrides(items)
    if overrides and methods > 1:
        raise SlrbenchError("--set: found with several methods; expected one method (config "
                            "fields are per method)")
    if epochs is not None:
        if "train.epochs" in overrides:
            raise SlrbenchError("--epochs and --set train.epochs: found both; expected one")
        overrides["train.epochs"] = epochs
    return overrides


def config_overrides(items: list[str]) -> dict[str, Any]:
    """--set KEY=VALUE items -> {dotted key: value}: the value parsed as JSON (true, 3, 0.5,
    [1, 2]), else kept as text (uniform). The keys are checked against the config later."""
    overrides: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise SlrbenchError(f"--set: found {item!r}; expected KEY=VALUE with a dotted key, "
                                "e.g. language.imm=false")
        if key in overrides:
            raise SlrbenchError(f"--set {key}: found twice; expected each key once")
        try:
            overrides[key] = json.loads(text)
        except ValueError:
            overrides[key] = text.strip()
    return overrides


def _load(name: str, quiet: bool, data_root: Path | None = None) -> Dataset:
    """Load the dataset with a line before and after: SynthSign is generated on first use; a
    --data-root copy is prepared first (docs/datasets/prepare.md)."""
    from slrbench.datasets.registry import get_entry, load_dataset
    from slrbench.training.loop import print_line

    synthetic = get_entry(name).synthetic
    if data_root is not None:
        return _from_data_root(name, data_root, quiet)
    if synthetic:
        check_cache()  # generated there: a bad folder fails now, not after minutes of work
    tic = time.perf_counter()
    if not quiet and synthetic:
        print_line(f"{name}: loading (generated and cached on first use)")
    data = load_dataset(name)
    if not quiet and synthetic:
        print_line(f"{name}: ready in {time.perf_counter() - tic:.1f} s")
    return data


def _from_data_root(name: str, root: Path, quiet: bool) -> Dataset:
    from slrbench.datasets.prepare import prepare
    from slrbench.datasets.prepared import META, PreparedDataset
    from slrbench.datasets.readers import detect_format, read_copy
    from slrbench.datasets.registry import get_entry, prepared_dir
    from slrbench.training.loop import print_line

    if get_entry(name).synthetic:
        raise SlrbenchError(f"--data-root: found with {name}, which is generated; expected a "
                            "real dataset")
    if not root.exists():
        raise SlrbenchError(f"--data-root {root}: no such file or folder; expected a copy of "
                            f"{name}")
    if (root / META).is_file():
        return PreparedDataset(root)
    result = prepare(read_copy(detect_format(root), root, name), name, prepared_dir(name))
    if not quiet:
        for line in result.report.lines():
            print_line(f"{name}: {line}")
    return PreparedDataset(result.folder)


def _suite(adapters: list[MethodAdapter], data: Dataset, store: RecordStore, preset: str | None,
           seed: int, settings: dict[str, Any], bootstrap: BootstrapConfig | None,
           jobs: int | None, threads: int | None) -> None:
    from slrbench.suite import run_suite

    outcome = run_suite(adapters, data, store, output_dir(None), preset=preset, seed=seed,
                        run_settings=settings, bootstrap=bootstrap, jobs=jobs, threads=threads,
                        console=console)
    for method, outcomes in outcome.streams.items():
        console.print(outcome_table(outcomes, title=f"{method}: streams"))
    for path in outcome.reports:
        console.print(f"wrote {path}")
    console.print("done: " + ", ".join(f"{k} {v:.0f} s" for k, v in outcome.seconds.items()))


def outcome_table(outcomes: Iterable[StreamOutcome], title: str = "run summary") -> Table:
    """Summary printed at the end of `slrbench run`."""
    from slrbench.marks import stream_label
    from slrbench.methods.registry import METHOD_NAMES, get_method
    from slrbench.report.tables import format_metric

    def label(outcome: StreamOutcome) -> str:  # upper bounds carry their mark (↑)
        if outcome.method not in METHOD_NAMES:
            return outcome.stream
        return stream_label(outcome.stream, get_method(outcome.method).spec.upper_bound_streams)

    table = Table(title=title)
    for column in ("stream", "status", "val P-I@1", "test P-I@1 [95 % CI]", "test P-C@1",
                   "test record"):
        table.add_column(column)
    for outcome in outcomes:
        val, test = outcome.metrics.get("val", {}), outcome.metrics.get("test", {})
        table.add_row(
            label(outcome),
            outcome.status,
            format_metric(val.get("pi@1"), "pi@1").split(" ")[0],
            format_metric(test.get("pi@1"), "pi@1"),
            format_metric(test.get("pc@1"), "pc@1").split(" ")[0],
            outcome.run_ids.get("test", "–"),
        )
    return table
