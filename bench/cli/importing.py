"""`slrbench import`: bring a score file computed elsewhere into the store
(`slrbench.importers`, docs/importing.md)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from slrbench.cli.common import ResultsOption, bootstrap_config, console, open_store
from slrbench.errors import SlrbenchError


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
    record = run_import(request, open_store(results))  # checks the options before reading
    top1 = record.metrics["pi@1"]["value"]
    flags = record_flags(record.meta, record.split)
    missing = record.meta["missing_ids"]
    absent = (f" ({len(missing)} official ids absent, e.g. "
              f"{', '.join(repr(i) for i in missing[:3])})" if missing else "")
    console.print(
        f"imported {record.n} {split} rows of {method}/{stream} on {dataset}{absent}"
        + f": P-I@1 {100 * top1:.2f} %{' ' + flags if flags else ''}; record {record.run_id}",
        soft_wrap=True)


def import_checkpoint(
    file: Annotated[Path, typer.Argument(help="The upstream checkpoint (torch.save file).")],
    method: Annotated[str, typer.Option(help="Upstream family: slgcn or dsta.")],
    dataset: Annotated[str, typer.Option(help="Dataset it was trained on (sets K).")],
    out: Annotated[Path, typer.Option(help="Where to write the native checkpoint (.pt).")],
    preset: Annotated[str, typer.Option(help="Native preset of the same shape.")] = "paper",
) -> None:
    """Map released upstream weights onto slrbench's native model and save them."""
    import torch

    from slrbench.datasets.registry import get_entry
    from slrbench.methods.upstream_weights import (
        WEIGHT_LAYOUTS,
        from_upstream,
        native_model,
        upstream_state,
    )
    from slrbench.store.atomic import atomic_write_bytes
    from slrbench.store.provenance import sha256_file
    from slrbench.training.loop import checkpoint_bytes, count_parameters, load_strict

    if method not in WEIGHT_LAYOUTS:
        raise SlrbenchError(f"--method: found '{method}'; expected one of "
                            f"{', '.join(WEIGHT_LAYOUTS)} (the upstream weight layouts mapped)")
    if not file.is_file():
        raise SlrbenchError(f"FILE {file}: no such file; expected an upstream checkpoint")
    model = native_model(method, get_entry(dataset).num_classes, preset)
    state = from_upstream(WEIGHT_LAYOUTS[method], upstream_state(str(file), str(file)),
                          str(file))
    load_strict(model, state, str(file))
    model.eval()
    with torch.no_grad():  # a fixed input must give finite logits of the right shape
        logits = model(torch.ones(1, 3, 32, 27, 1), 1.0)
    if not torch.isfinite(logits).all():
        raise SlrbenchError(f"{file}: the mapped model gives non-finite logits; expected finite "
                            "weights")
    atomic_write_bytes(out, checkpoint_bytes({"model": model.state_dict()}))
    console.print(f"wrote {out}: {method}/{preset}, K={logits.shape[1]}, "
                  f"{count_parameters(model):,} parameters, sha256 {sha256_file(out)[:16]}…",
                  soft_wrap=True)
