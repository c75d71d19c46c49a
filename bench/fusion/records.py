"""Fusion inputs and outputs as run records (docs/evaluation.md#fusion-block, #alignment-errors).

Inputs: the newest test record per stream of a method on a dataset, each paired with the val
record of the same checkpoint; aligned by sample id, never by position. Outputs: one fused record
per split, with the `fusion` block of docs/evaluation.md#fusion-block and every required field;
dataset and method identity are copied from the inputs.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from slrbench.errors import SlrbenchError
from slrbench.fusion.engine import normalised, to_space
from slrbench.fusion.strategies import FusionResult, StreamStack
from slrbench.metrics import METRIC_DEFINITIONS_VERSION, BootstrapConfig, evaluate
from slrbench.store.provenance import (
    canonical_json,
    config_sha256,
    environment,
    git_info,
    to_jsonable,
    utc_now,
)
from slrbench.store.record_store import RecordStore
from slrbench.store.records import (
    RECORD_VERSION,
    RunRecord,
    derived_meta,
    meta_template,
    new_run_id,
)

FUSED_PREFIX = "fused"


def is_fused(entry: Mapping[str, Any]) -> bool:
    """True for a fused record's meta or index row (never an input of another fusion here)."""
    stream = str(entry.get("stream") or "")
    # "fused:<strategy>"; a method's own head may be called "fused" (CAMFuse) and is an input.
    return stream.startswith(FUSED_PREFIX + ":") or bool(entry.get("fusion")) or bool(
        entry.get("fusion_strategy"))


def _show(items: Sequence[Any], limit: int = 10) -> str:
    shown = ", ".join(repr(str(x)) for x in list(items)[:limit])
    more = len(items) - min(len(items), limit)
    return f"[{shown}{f', … +{more} more' if more else ''}]"


# ----------------------------------------------------------------------------------- inputs


def stack_records(records: Sequence[RunRecord], space: str, split: str) -> StreamStack:
    """Align `records` (one per stream) by sample id to the first one's order and stack their
    scores in `space`. Id sets, labels, class count and vocabulary must agree."""
    if not records:
        raise SlrbenchError(f"fusion inputs: found no {split} records; expected one per stream")
    first = records[0]
    streams = [r.stream for r in records]
    twice = sorted({s for s in streams if streams.count(s) > 1})
    if twice:
        raise SlrbenchError(f"fusion inputs: stream(s) {twice} given twice; expected one "
                            "record per stream")
    stacked = []
    for record in records:
        where = f"record {record.run_id} (stream {record.stream})"
        for name in ("split", "dataset", "num_classes", "vocab_sha256"):
            if record.meta.get(name) != first.meta.get(name):
                raise SlrbenchError(f"{where}: {name} is {record.meta.get(name)!r}; expected "
                                    f"{first.meta.get(name)!r} like {first.run_id}")
        if record.split != split:
            raise SlrbenchError(f"{where}: split is {record.split!r}; expected {split!r}")
        aligned = record if record is first else record.aligned_to(first.sample_ids)
        differ = aligned.labels != first.labels
        if differ.any():
            raise SlrbenchError(
                f"{where}: labels differ from {first.run_id} at {int(differ.sum())} id(s) "
                f"{_show(first.sample_ids[differ])}; expected the same label per id")
        stacked.append(to_space(aligned.scores, record.score_kind, space, where))
    return StreamStack(tuple(streams), np.stack(stacked), first.labels.copy(),
                       first.sample_ids.copy(), space, split)


def check_pairs(val: Sequence[RunRecord], test: Sequence[RunRecord]) -> None:
    """Val and test inputs come from the same checkpoints, stream by stream
    (docs/evaluation.md#alignment-errors)."""
    if [r.stream for r in val] != [r.stream for r in test]:
        raise SlrbenchError(f"fusion inputs: val streams {[r.stream for r in val]}; expected "
                            f"the test streams {[r.stream for r in test]} in the same order")
    for v, t in zip(val, test):
        for name in ("checkpoint_sha256", "num_classes", "vocab_sha256", "dataset"):
            if v.meta.get(name) != t.meta.get(name):
                raise SlrbenchError(
                    f"record {v.run_id} (val, stream {v.stream}): {name} is "
                    f"{str(v.meta.get(name))[:16]!r}; expected {str(t.meta.get(name))[:16]!r} "
                    f"as in test record {t.run_id} (weights fitted on val apply only to the "
                    "same checkpoints)")


def select_records(store: RecordStore, method: str, dataset: str,
                   streams: Sequence[str] | None = None, seed: int | None = None,
                   order: Sequence[str] = (), default: Sequence[str] = ()
                   ) -> tuple[list[RunRecord] | None, list[RunRecord]]:
    """(val records or None, test records) of `method` on `dataset`: the newest test record
    per stream, and the val record of the same checkpoint, config and seed. Without `streams`:
    the method's default fusion inputs among the stored streams (`FusionRecipe.streams`, when
    two or more are stored), else every stored stream."""
    filters: dict[str, Any] = {"method": method, "dataset": dataset}
    if seed is not None:
        filters["seed"] = seed
    rows = [r for r in store.find(**filters) if not is_fused(r)]
    store.require_readable()  # an unreadable record might be one of the streams to fuse
    tests = [r for r in rows if r["split"] == "test"]
    if not tests:
        which = f" --input-seed {seed}" if seed is not None else ""
        raise SlrbenchError(
            f"--method {method} --dataset {dataset}{which}: no test records in {store.root}; "
            f"expected stream records from `slrbench run --method {method} --dataset "
            f"{dataset}{' --seed ' + str(seed) if seed is not None else ''}`")
    available = {r["stream"] for r in tests}
    if streams:
        missing = [s for s in streams if s not in available]
        if missing:
            raise SlrbenchError(f"--streams: no test record for stream(s) {missing}; expected "
                                f"streams among {sorted(available)}")
        chosen = list(dict.fromkeys(streams))
    else:
        preferred = [s for s in default if s in available]
        chosen = preferred if len(preferred) >= 2 else sorted(
            available, key=lambda s: (order.index(s) if s in order else len(order), s))
    if len(chosen) < 2:
        raise SlrbenchError(f"--streams: found {len(chosen)} stream ({chosen}); expected at "
                            "least two streams to fuse")
    test_rows = {s: _newest(r for r in tests if r["stream"] == s) for s in chosen}
    val_rows = {}
    for stream, test in test_rows.items():
        same = [r for r in rows if r["split"] == "val" and r["stream"] == stream and all(
            r.get(k) == test.get(k) for k in ("seed", "config_sha256", "checkpoint_sha256"))]
        if same:
            val_rows[stream] = _newest(same)
    if val_rows and len(val_rows) < len(chosen):
        lacking = [s for s in chosen if s not in val_rows]
        raise SlrbenchError(
            f"--method {method} --dataset {dataset}: no val record of the same checkpoint for "
            f"stream(s) {lacking}; expected a val record for every fused stream (or none)")
    # Checked on load: a fusion never starts from an edited or foreign record.
    test_records = [store.load_checked(test_rows[s]["run_id"]) for s in chosen]
    val_records = ([store.load_checked(val_rows[s]["run_id"]) for s in chosen]
                   if val_rows else None)
    return val_records, test_records


def _newest(rows: Any) -> dict[str, Any]:
    return max(rows, key=lambda r: (r.get("finished_at") or "", r["run_id"]))


# ---------------------------------------------------------------------------------- outputs


def _common(records: Sequence[RunRecord], name: str, default: Any = None) -> Any:
    values = [r.meta.get(name) for r in records]
    same = all(canonical_json(v) == canonical_json(values[0]) for v in values)
    return values[0] if same else default


def fusion_identity(records: Sequence[RunRecord]) -> dict[str, Any]:
    """Method identity copied from the inputs; mixing methods needs an explicit design."""
    methods = sorted({r.method for r in records})
    if len(methods) != 1:
        raise SlrbenchError(f"fusion inputs: methods {methods}; expected records of one method")
    return {"method": methods[0], "dataset": records[0].dataset}


def new_fused_run_id(records: Sequence[RunRecord], split: str, stream: str,
                     config: Mapping[str, Any]) -> str:
    identity = fusion_identity(records)
    return new_run_id({**identity, "split": split, "stream": stream,
                       "seed": _common(records, "seed"), "config_sha256": config_sha256(config)})


def fusion_config(result: FusionResult, test: Sequence[RunRecord],
                  val: Sequence[RunRecord] | None) -> dict[str, Any]:
    """The request (strategy, space, search settings, inputs): hashed into config_sha256."""
    return {
        "fusion": result.options.to_config(),
        "streams": list(result.streams),
        "inputs": {"test": [r.run_id for r in test], "val": [r.run_id for r in val or []]},
        "stream_order": list(result.streams),
    }


def leak_facts(result: FusionResult, inputs: Sequence[RunRecord]) -> tuple[bool, list[str]]:
    """(test_tuned, leaky_reasons) of a fused record: its own tuning plus its inputs'."""
    reasons: list[str] = []
    if result.tuned_on == "test":
        reasons.append("fusion weights tuned on the test split (--allow-test-tuning)")
    recipe = result.options.recipe
    if result.options.strategy == "fixed" and recipe is not None and recipe.test_tuned:
        reasons.append(f"published fusion weights were tuned on the reported split upstream "
                       f"({recipe.source})")
    for record in inputs:
        if record.meta.get("test_tuned"):
            reasons.append(f"input {record.run_id} is test-tuned")
        reasons += [f"input {record.run_id}: {r}" for r in record.meta.get("leaky_reasons", [])]
    return bool(reasons), reasons


def fusion_block(result: FusionResult, inputs: Sequence[RunRecord],
                 pair: Mapping[str, str | None], ablations: Mapping[str, Any] | None) -> dict:
    """The `fusion` field of docs/evaluation.md#fusion-block (JSON-ready)."""
    options = result.options
    fits = result.fits()
    main = fits[0][1]
    block: dict[str, Any] = {
        "inputs": [{"run_id": r.run_id, "stream": r.stream, "split": r.split,
                    "ids_sha256": r.meta.get("ids_sha256"),
                    "checkpoint_sha256": r.meta.get("checkpoint_sha256"),
                    "score_kind": r.score_kind} for r in inputs],
        "strategy": options.strategy,
        "score_space": options.space,
        "normalise": True,
        "tuned_on": result.tuned_on,
        "pair": dict(pair),
    }
    if result.folds is None:
        block.update(_fit_facts(main))
    else:
        block["weights_source"] = f"{options.strategy} fitted per fold on the other test folds"
        block["crossfit"] = {
            **(result.crossfit or {}),
            "folds": [{"fold": i, "n_scored": int(rows.size), **_fit_facts(fitted)}
                      for i, (rows, fitted) in enumerate(result.folds)],
        }
        block["weights"] = None
    if ablations:
        block["ablations"] = dict(ablations)
    return to_jsonable(block, "fusion block")


def _fit_facts(fitted: Any) -> dict[str, Any]:
    details = dict(fitted.details)
    weights = fitted.weight_table()
    facts = {
        "weights": weights,
        "weights_normalised": (None if weights is None else
                               dict(zip(weights, normalised(np.array(list(weights.values())))))),
        "weights_source": details.pop("weights_source", None),
        "search_space": details.pop("search_space", None),
        "n_trials": details.pop("n_trials", None),
        "sampler_seed": details.pop("sampler_seed", None),
        "objective": details.pop("objective", None),
        "library": details.pop("library", None),
        "levels": details.pop("levels", None),
    }
    details.pop("group_weights", None)
    details.pop("level_weights", None)
    facts["search"] = details
    return facts


def build_fused_record(result: FusionResult, split: str, inputs: Sequence[RunRecord],
                       stack: StreamStack, fused: np.ndarray, run_id: str,
                       config: Mapping[str, Any], pair: Mapping[str, str | None],
                       bootstrap: BootstrapConfig | None, started_at: str, tic: float,
                       ablations: Mapping[str, Any] | None = None) -> RunRecord:
    """A complete, valid run record for the fused scores of one split."""
    first = inputs[0]
    k = int(first.num_classes)
    evaluation = evaluate(fused, stack.labels, k, score_kind=result.score_kind,
                          bootstrap=bootstrap)
    test_tuned, reasons = leak_facts(result, inputs)
    # Heads of one network (one checkpoint) count its parameters once.
    params = list({r.meta.get("checkpoint_sha256") or r.run_id: r.meta.get("params")
                   for r in inputs}.values())
    decisions = sorted({d for r in inputs for d in r.meta.get("decisions", [])})
    decisions += [f"fusion.strategy={result.options.strategy}",
                  f"fusion.space={result.options.space}",
                  f"fusion.tuned_on={result.tuned_on or 'none'}"]
    meta = meta_template(
        run_id=run_id,
        **fusion_identity(inputs),
        adapter_version=_common(inputs, "adapter_version"),
        preset=_common(inputs, "preset", "mixed"),
        stream=f"{FUSED_PREFIX}:{result.options.strategy}",
        seed=_common(inputs, "seed"),
        reconstruction=any(r.meta.get("reconstruction") for r in inputs),
        decisions=decisions,
        subset=_common(inputs, "subset"),
        split=split,
        split_version=_common(inputs, "split_version"),
        split_sha256=_common(inputs, "split_sha256"),
        vocab_sha256=_common(inputs, "vocab_sha256"),
        num_classes=k,
        n_official=_common(inputs, "n_official"),
        missing_ids=_common(inputs, "missing_ids", []),
        pose=_common(inputs, "pose"),
        config=dict(config),
        config_sha256=config_sha256(config),
        **git_info(Path(__file__).resolve().parent),
        env=environment("cpu"),
        params=sum(params) if all(isinstance(p, int) for p in params) else None,
        selection_split=_common(inputs, "selection_split"),
        selection_metric=_common(inputs, "selection_metric"),
        test_protocol=_common(inputs, "test_protocol"),
        score_kind=result.score_kind,
        test_tuned=test_tuned,
        val_test_merged=any(r.meta.get("val_test_merged") for r in inputs),
        leaky_reasons=reasons,
        metrics=evaluation.to_dict()["metrics"],
        metric_definitions_version=METRIC_DEFINITIONS_VERSION,
        bootstrap=bootstrap.to_dict() if bootstrap else None,
        started_at=started_at,
        finished_at=utc_now(),
        wall_time_s=round(time.perf_counter() - tic, 3),
        fusion=fusion_block(result, inputs, pair, ablations),
        **derived_meta(stack.sample_ids, stack.labels),
    )
    meta["record_version"] = RECORD_VERSION
    meta["chance"] = evaluation.chance
    extras = {f"per_class_{name.replace('@', '')}": values
              for name, values in evaluation.per_class.items()}
    if split == "test" and result.fold_of is not None:
        extras["crossfit_fold"] = result.fold_of
    return RunRecord(meta, stack.sample_ids, stack.labels, fused, extras)
