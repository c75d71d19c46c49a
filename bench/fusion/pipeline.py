"""`fuse` end to end: input records -> fitted fusion -> ablations -> fused records in the store.

    from slrbench.fusion.pipeline import default_options, fuse_from_store
    outcome = fuse_from_store(store, "slgcn", "synthsign-tiny",
                              default_options("slgcn", "synthsign-tiny", strategy="bayes"),
                              ablate=("loo", "subsets"))
    outcome.records["test"].metrics["pi@1"]

`fuse_records` does the same for records already in hand (tests, notebooks); with `store=None`
nothing is written.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from slrbench.datasets.registry import load_dataset
from slrbench.errors import SlrbenchError
from slrbench.fusion.ablation import (
    DEFAULT_CI_ROWS,
    AblationTable,
    ablation_summary,
    check_kinds,
    run_ablations,
    write_tables,
)
from slrbench.fusion.records import (
    FUSED_PREFIX,
    build_fused_record,
    check_pairs,
    fusion_config,
    new_fused_run_id,
    select_records,
    stack_records,
)
from slrbench.fusion.strategies import FusionOptions, FusionResult, fit_protocol
from slrbench.methods.base import FusionRecipe
from slrbench.metrics import DEFAULT_BOOTSTRAP, BootstrapConfig
from slrbench.store.provenance import utc_now
from slrbench.store.record_store import RecordStore
from slrbench.store.records import RunRecord, validate_record


def method_recipe(method: str) -> tuple[FusionRecipe | None, tuple[str, ...]]:
    """(fusion recipe, stream order) of a registered method; (None, ()) for unknown methods
    (e.g. imported upstream records)."""
    from slrbench.methods.registry import METHOD_NAMES, get_method

    if method not in METHOD_NAMES:
        return None, ()
    spec = get_method(method).spec
    return spec.fusion, tuple(spec.streams)


def default_options(method: str, dataset: str, strategy: str | None = None,
                    space: str | None = None, recipe: FusionRecipe | None = None,
                    **settings: Any) -> FusionOptions:
    """Options with the method's recipe (or `recipe`, e.g. weights given on the command line):
    its strategy and score space unless overridden (no recipe: mean of logits)."""
    recipe = recipe or method_recipe(method)[0]
    return FusionOptions(
        strategy=strategy or (recipe.strategy if recipe else "mean"),
        space=space or (recipe.score_space if recipe else "logits"),
        recipe=recipe, dataset=dataset, **settings)


@dataclass
class FusionOutcome:
    result: FusionResult
    records: dict[str, RunRecord]  # split -> fused record
    inputs: dict[str, list[RunRecord]]  # split -> input records
    tables: dict[str, AblationTable] = field(default_factory=dict)
    paths: dict[str, Path] = field(default_factory=dict)  # split -> run dir (when stored)


def registry_signers(dataset: str, split: str, sample_ids: np.ndarray) -> np.ndarray | None:
    """The signer of each sample where the dataset is available locally and knows every one of
    them; None otherwise (cross-fitting then folds by sample and says so)."""
    try:
        data = load_dataset(dataset)
        by_id = dict(zip(data.spec.splits[split], data.signers(split), strict=True))
    except (SlrbenchError, KeyError, NotImplementedError):
        return None
    if not all(str(i) in by_id for i in sample_ids):
        return None
    return np.array([by_id[str(i)] for i in sample_ids], dtype=str)


def fuse_records(val_records: Sequence[RunRecord] | None, test_records: Sequence[RunRecord],
                 options: FusionOptions, store: RecordStore | None = None,
                 ablate: Sequence[str] = (),
                 bootstrap: BootstrapConfig | None = DEFAULT_BOOTSTRAP,
                 ci_rows: int = DEFAULT_CI_ROWS,
                 subset_weights: str = "refit") -> FusionOutcome:
    """Fit on val, apply to val and test, ablate, and (with a store) write both fused records;
    nothing is written unless both records validate. `subset_weights`: the all-subsets
    ablation's weights, `refit` per subset or the fit `restricted` to it."""
    started, tic = utc_now(), time.perf_counter()
    options.check()
    val_records = list(val_records) if val_records else None
    if val_records:
        check_pairs(val_records, test_records)
    test = stack_records(test_records, options.space, "test")
    options.check_grid_streams(test.streams)
    val = stack_records(val_records, options.space, "val") if val_records else None
    kinds = check_kinds(ablate, len(test.streams), val is not None, options.allow_test_tuning,
                        subset_weights)
    signers = (registry_signers(test_records[0].dataset, "test", test.sample_ids)
               if options.crossfit else None)
    result = fit_protocol(options, val, test, signers)
    # Test labels are read from here on only: fitting is done.
    tables = run_ablations(kinds, result, val, test, bootstrap, ci_rows, subset_weights)
    summary = ablation_summary(tables, result, ci_rows, subset_weights) if tables else None
    config = fusion_config(result, test_records, val_records)
    stream = f"{FUSED_PREFIX}:{options.strategy}"
    pair: dict[str, str | None] = {
        "val": new_fused_run_id(val_records, "val", stream, config) if val_records else None,
        "test": new_fused_run_id(test_records, "test", stream, config),
    }
    records: dict[str, RunRecord] = {}
    if val is not None and val_records and result.val_fused is not None:
        records["val"] = build_fused_record(result, "val", val_records, val, result.val_fused,
                                            pair["val"] or "", config, pair, bootstrap, started,
                                            tic)
    records["test"] = build_fused_record(result, "test", test_records, test, result.test_fused,
                                         pair["test"] or "", config, pair, bootstrap, started,
                                         tic, summary)
    inputs = {"test": list(test_records), **({"val": val_records} if val_records else {})}
    outcome = FusionOutcome(result, records, inputs, tables)
    if store is not None:
        for split, record in records.items():
            validate_record(record, f"fused {split} record {record.run_id}")
        with tempfile.TemporaryDirectory(prefix="slrbench-ablation-") as tmp:
            side = write_tables(tables, summary, Path(tmp)) if tables and summary else {}
            # The fused val and test records appear together or not at all.
            splits = list(records)
            paths = store.add_group([(records[split], side if split == "test" else None)
                                     for split in splits])
            outcome.paths.update(zip(splits, paths))
    return outcome


def fuse_from_store(store: RecordStore, method: str, dataset: str, options: FusionOptions,
                    streams: Sequence[str] | None = None, input_seed: int | None = None,
                    ablate: Sequence[str] = (),
                    bootstrap: BootstrapConfig | None = DEFAULT_BOOTSTRAP,
                    ci_rows: int = DEFAULT_CI_ROWS, write: bool = True,
                    subset_weights: str = "refit") -> FusionOutcome:
    """Fuse the newest stream records of `method` on `dataset` and store the fused records."""
    recipe, order = method_recipe(method)
    options.check()  # bad options fail before any record is read
    val, test = select_records(store, method, dataset, streams, input_seed, order,
                               default=(recipe.streams or ()) if recipe else ())
    return fuse_records(val, test, options, store if write else None, ablate, bootstrap,
                        ci_rows, subset_weights)
