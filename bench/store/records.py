"""Run records: one directory per (method, dataset, subset, split, stream, seed, checkpoint).

```
<store>/runs/<run_id>/
    run.json       metadata, provenance and metrics (schema below, docs/evaluation.md#run-metadata)
    outputs.npz    sample_ids (unicode), labels (int64), scores, optional extras
    <side files>   copied in at write time (log.jsonl, figures, ...)
```

Scores live under the npz key given by `score_kind`: `logits` for logits, `scores` for
`log_probs` / `probs`, and `pred_top1` (int64 [N], predicted class) for prediction-only records
(generative recognisers, docs/evaluation.md#per-sample-outputs). Extras named `per_class_*` have K
rows; every other extra (e.g. `features`) has one row per sample and is reordered with the samples.

Records are written atomically (temp dir in the same store, fsync, rename), read with
`allow_pickle=False`, and validated on both sides: a record that fails `validate_record` is never
written, and one that fails on reading raises `SlrbenchError` naming the file.
"""

from __future__ import annotations

import copy
import json
import math
import re
import secrets
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from slrbench.errors import SlrbenchError
from slrbench.store.atomic import StagedDirectory, check_npz_arrays, dumps_json, write_npz
from slrbench.store.provenance import config_sha256, sha256_ids

RECORD_VERSION = 3
# Versions this code reads: each later version only added optional fields.
READABLE_VERSIONS = frozenset({1, 2, 3})

# One line per schema version; any change to run.json or outputs.npz bumps RECORD_VERSION.
CHANGELOG: tuple[str, ...] = (
    "1: first schema. run.json holds the fields of docs/evaluation.md#run-metadata "
    "(REQUIRED_FIELDS, OPTIONAL_FIELDS); outputs.npz holds sample_ids (unicode), labels (int64) "
    "and logits | scores (float32 [N, K]) or pred_top1 (int64 [N]) by score_kind, plus extras "
    "(per_class_* with K rows, others with N rows).",
    "2: optional run.json fields training_sha256 (hash of what determines the training: model "
    "family, data, model and train sections, dataset, seed), compute (jobs, torch threads, usable "
    "cores) and reused_from (the record whose outputs a reused stream repeats). Version 1 "
    "records stay readable.",
    "3: optional run.json field commit_group {id, members}: records written together (a run's "
    "val and test records, a fusion's pair) are visible only once every member is in the store. "
    "Versions 1 and 2 stay readable.",
)

RUN_JSON = "run.json"
OUTPUTS = "outputs.npz"
RUNS_DIR = "runs"

SCORE_KINDS = ("logits", "log_probs", "probs", "pred_top1")
SCORE_ARRAY = {
    "logits": "logits", "log_probs": "scores", "probs": "scores", "pred_top1": "pred_top1",
}
RESERVED_ARRAYS = frozenset({"sample_ids", "labels", "logits", "scores", "pred_top1"})
PER_CLASS_PREFIX = "per_class_"

# Field -> allowed JSON kinds. "number" is int or float; bool is never an int here.
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    # identity
    "record_version": ("int",),
    "run_id": ("str",),
    "method": ("str",),
    "adapter_version": ("str", "null"),
    "preset": ("str", "null"),
    "stream": ("str",),
    "seed": ("int", "null"),
    "reconstruction": ("bool",),
    "decisions": ("list",),
    # data
    "dataset": ("str",),
    "subset": ("str", "null"),
    "split": ("str",),
    "split_version": ("str", "int", "null"),
    "split_sha256": ("str", "null"),
    "vocab_sha256": ("str", "null"),
    "num_classes": ("int",),
    "n_eval": ("int",),
    "n_official": ("int", "null"),
    "missing_ids": ("list", "dict", "null"),
    "classes_present": ("int",),
    "ids_sha256": ("str",),
    "pose": ("dict", "null"),
    # model and code
    "config": ("dict", "null"),
    "config_sha256": ("str", "null"),
    "git_commit": ("str", "null"),
    "git_dirty": ("bool", "null"),
    "env": ("dict", "null"),
    "checkpoint": ("str", "null"),
    "checkpoint_sha256": ("str", "null"),
    "params": ("int", "null"),
    # protocol
    "selection_split": ("str", "null"),
    "selection_metric": ("str", "null"),
    "selected_epoch": ("int", "null"),
    "test_protocol": ("dict", "str", "null"),
    "score_kind": ("str",),
    "test_tuned": ("bool",),
    "val_test_merged": ("bool",),
    "leaky_reasons": ("list",),
    # results
    "metrics": ("dict",),
    "metric_definitions_version": ("str", "int", "null"),
    "bootstrap": ("dict", "null"),
    "started_at": ("str", "null"),
    "finished_at": ("str", "null"),
    "wall_time_s": ("number", "null"),
}

OPTIONAL_FIELDS: dict[str, tuple[str, ...]] = {
    "gflops": ("number", "null"),
    "fusion": ("dict", "null"),
    "source": ("str", "null"),
    "paper_claim": ("number", "dict", "null"),
    "status": ("str", "null"),
    "delta": ("number", "dict", "null"),
    "timings": ("dict", "null"),
    "notes": ("str", "list", "null"),
    "training_sha256": ("str", "null"),
    "compute": ("dict", "null"),
    "reused_from": ("str", "null"),
    "commit_group": ("dict", "null"),
    "imported": ("dict", "null"),  # slrbench import: format, files read (sha256), command
    "overrides": ("dict", "null"),  # config fields changed from the preset (--epochs, API)
}

_RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+=-]{0,199}$")
_EXTRA_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


# ----------------------------------------------------------------------------------- helpers


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, dict):
        return "dict"
    return type(value).__name__


def _kind_ok(value: Any, allowed: tuple[str, ...]) -> bool:
    kind = _kind(value)
    return kind in allowed or (kind in ("int", "float") and "number" in allowed)


def _show(items: Sequence[Any] | np.ndarray, limit: int = 10) -> str:
    """Up to `limit` items, then how many were left out."""
    shown = [str(x) for x in list(items)[:limit]]
    more = len(items) - len(shown)
    tail = f", … +{more} more" if more > 0 else ""
    return "[" + ", ".join(repr(s) for s in shown) + tail + "]"


def _as_ids(ids: Any) -> np.ndarray:
    arr = np.asarray(ids)
    if arr.dtype.kind == "U":
        return arr
    if arr.size == 0:
        return np.zeros(arr.shape, dtype="<U1")
    if arr.dtype.kind == "O" and all(isinstance(x, str) for x in arr.ravel()):
        return arr.astype(str)
    raise SlrbenchError(
        f"RunRecord: sample_ids have dtype {arr.dtype}; expected strings "
        "(canonical ids are text: '00412' is not 412)"
    )


def _as_int64(values: Any, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.size == 0 and arr.dtype.kind not in "iu":
        return arr.astype(np.int64)
    if arr.dtype.kind not in "iu":
        raise SlrbenchError(f"RunRecord: {name} have dtype {arr.dtype}; expected integers")
    return arr.astype(np.int64, copy=False)


def _as_scores(values: Any, score_kind: Any) -> np.ndarray:
    if score_kind == "pred_top1":
        return _as_int64(values, "pred_top1")
    arr = np.asarray(values)
    if arr.dtype.kind not in "iuf":
        raise SlrbenchError(f"RunRecord: scores have dtype {arr.dtype}; expected float32")
    return arr.astype(np.float32, copy=False)


def derived_meta(sample_ids: Any, labels: Any) -> dict[str, Any]:
    """The meta fields that follow from the arrays (fill them from here, not by hand)."""
    ids = _as_ids(sample_ids)
    lab = _as_int64(labels, "labels")
    return {
        "ids_sha256": sha256_ids(ids.tolist()),
        "n_eval": int(ids.shape[0]) if ids.ndim == 1 else 0,
        "classes_present": int(np.unique(lab).size),
    }


def meta_template(**fields: Any) -> dict[str, Any]:
    """Every required field with a neutral default (None, False, [] or {}), updated by `fields`.

    Identity fields (run_id, method, dataset, split, stream, num_classes, score_kind, ...) stay
    None until the caller fills them, so forgetting one still fails validation.
    """
    meta: dict[str, Any] = {}
    for name, kinds in REQUIRED_FIELDS.items():
        if kinds == ("bool",):
            meta[name] = False
        elif kinds == ("list",):
            meta[name] = []
        elif kinds == ("dict",):
            meta[name] = {}
        else:
            meta[name] = None
    meta["record_version"] = RECORD_VERSION
    meta["score_kind"] = "logits"
    meta.update(fields)
    return meta


def _slug(value: Any) -> str:
    text = re.sub(r"[^a-z0-9.+]+", "_", str(value).lower()).strip("._+")
    return text[:32] or "x"


def new_run_id(identity: Mapping[str, Any]) -> str:
    """`<method>-<subset or dataset>-<stream>-s<seed>-<8 hex of identity hash>-<6 random hex>`.

    The hash covers the whole `identity` (config hash, data hashes, stream, seed, ...), so equal
    identities share the prefix; the random suffix keeps re-runs apart (a clash would be refused
    by the store, never overwrite).
    """
    parts = [
        _slug(v)
        for v in (identity.get("method"), identity.get("subset") or identity.get("dataset"),
                  identity.get("stream"))
        if v is not None
    ]
    if identity.get("seed") is not None:
        parts.append(f"s{_slug(identity['seed'])}")
    parts.append(config_sha256(dict(identity))[:8])
    parts.append(secrets.token_hex(3))
    return "-".join(parts)


# ------------------------------------------------------------------------------------ record


@dataclass(eq=False)
class RunRecord:
    """Metadata plus per-sample arrays of one run. Arrays are coerced on construction (ids to
    unicode, labels to int64, scores to float32) so the object equals what is stored."""

    meta: dict[str, Any]
    sample_ids: np.ndarray
    labels: np.ndarray
    scores: np.ndarray
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.meta, dict):
            raise SlrbenchError(f"RunRecord: meta is {type(self.meta).__name__}; expected a dict")
        self.sample_ids = _as_ids(self.sample_ids)
        self.labels = _as_int64(self.labels, "labels")
        self.scores = _as_scores(self.scores, self.meta.get("score_kind", "logits"))
        self.extras = {str(k): np.asarray(v) for k, v in (self.extras or {}).items()}

    # Convenience views of meta.
    @property
    def run_id(self) -> str:
        return self.meta.get("run_id")  # type: ignore[return-value]

    @property
    def method(self) -> str:
        return self.meta.get("method")  # type: ignore[return-value]

    @property
    def dataset(self) -> str:
        return self.meta.get("dataset")  # type: ignore[return-value]

    @property
    def subset(self) -> str | None:
        return self.meta.get("subset")

    @property
    def split(self) -> str:
        return self.meta.get("split")  # type: ignore[return-value]

    @property
    def stream(self) -> str:
        return self.meta.get("stream")  # type: ignore[return-value]

    @property
    def seed(self) -> int | None:
        return self.meta.get("seed")

    @property
    def score_kind(self) -> str:
        return self.meta.get("score_kind", "logits")

    @property
    def num_classes(self) -> int:
        k = self.meta.get("num_classes")
        if k is None and self.scores.ndim == 2:
            return int(self.scores.shape[1])
        return k  # type: ignore[return-value]

    @property
    def metrics(self) -> dict[str, Any]:
        return self.meta.get("metrics") or {}

    @property
    def n(self) -> int:
        return int(self.sample_ids.shape[0])

    def aligned_to(self, ids: Sequence[str] | np.ndarray) -> RunRecord:
        """The same record with rows in the order of `ids` (registry order, another stream's
        order). The id sets must be identical; otherwise `SlrbenchError` with both counts and up
        to 10 offending ids per side (docs/evaluation.md#alignment-errors)."""
        target = [str(i) for i in (ids.tolist() if isinstance(ids, np.ndarray) else ids)]
        where = f"record {self.run_id}"
        if len(set(target)) != len(target):
            dup = _duplicates(np.asarray(target, dtype=str))
            raise SlrbenchError(
                f"{where}: the id list to align to has {len(dup)} duplicate id(s) {_show(dup)}; "
                "expected unique ids"
            )
        own = self.sample_ids.tolist()
        position = {sid: i for i, sid in enumerate(own)}
        missing = sorted(set(target) - position.keys())
        extra = sorted(position.keys() - set(target))
        if missing or extra:
            raise SlrbenchError(
                f"{where}: id sets differ (record {len(own)} ids, target {len(target)} ids): "
                f"{len(missing)} target id(s) missing from the record {_show(missing)}; "
                f"{len(extra)} record id(s) not in the target {_show(extra)}; "
                "expected identical id sets"
            )
        order = np.fromiter((position[t] for t in target), dtype=np.int64, count=len(target))
        meta = copy.deepcopy(self.meta)
        meta["ids_sha256"] = sha256_ids(target)
        extras = {
            name: (arr if name.startswith(PER_CLASS_PREFIX) else arr[order])
            for name, arr in self.extras.items()
        }
        return RunRecord(meta, self.sample_ids[order], self.labels[order], self.scores[order],
                         extras)


def _duplicates(ids: np.ndarray) -> list[str]:
    uniq, counts = np.unique(ids, return_counts=True)
    return uniq[counts > 1].tolist()


# -------------------------------------------------------------------------------- validation


def validate_meta(meta: Any, source: str) -> None:
    """Presence and JSON kind of every required field, plus values that must be in range."""
    if not isinstance(meta, dict):
        raise SlrbenchError(f"{source}: metadata is {_kind(meta)}; expected a JSON object")
    missing = [name for name in REQUIRED_FIELDS if name not in meta]
    if missing:
        raise SlrbenchError(
            f"{source}: {len(missing)} required field(s) missing: {', '.join(missing)}; "
            f"expected every field of record schema v{RECORD_VERSION}"
        )
    version = meta["record_version"]
    if _kind(version) == "int" and version not in READABLE_VERSIONS:
        newer = version > RECORD_VERSION
        raise SlrbenchError(
            f"{source}: record_version is {version}; expected {RECORD_VERSION}"
            + (" (written by a newer slrbench: upgrade)" if newer else " (no migration exists)")
        )
    for fields in (REQUIRED_FIELDS, OPTIONAL_FIELDS):
        for name, kinds in fields.items():
            if name in meta and not _kind_ok(meta[name], kinds):
                raise SlrbenchError(
                    f"{source}: field '{name}' is {_kind(meta[name])} ({meta[name]!r:.60}); "
                    f"expected {' or '.join(kinds)}"
                )
    if not _RUN_ID_RE.match(meta["run_id"]):
        raise SlrbenchError(
            f"{source}: field 'run_id' is {meta['run_id']!r}; expected letters, digits and "
            "'._@+=-' (a directory name, not starting with '.')"
        )
    if meta["score_kind"] not in SCORE_KINDS:
        raise SlrbenchError(
            f"{source}: field 'score_kind' is {meta['score_kind']!r}; expected one of "
            f"{', '.join(SCORE_KINDS)}"
        )
    if meta["num_classes"] < 1:
        raise SlrbenchError(
            f"{source}: field 'num_classes' is {meta['num_classes']}; expected >= 1"
        )
    for name, value in meta["metrics"].items():
        if _kind(value) not in ("int", "float", "null", "dict"):
            raise SlrbenchError(
                f"{source}: metric '{name}' is {_kind(value)}; expected a number, null or "
                "{value, ci_low, ci_high}"
            )
        parts = value.items() if isinstance(value, dict) else [("value", value)]
        for part, number in parts:
            # Python's json reads NaN and Infinity; a metric holding one is damage, not data.
            if _kind(number) == "float" and not math.isfinite(number):
                raise SlrbenchError(f"{source}: metric '{name}' {part} is {number}; expected a "
                                    "finite number or null")
    _validate_fusion(meta.get("fusion"), source)


def _validate_fusion(block: Any, source: str) -> None:
    if block is None:
        return
    if not isinstance(block.get("strategy"), str):
        raise SlrbenchError(f"{source}: fusion.strategy is missing or not a string; expected "
                            "fixed, mean, grid, bayes, hier or stack")
    inputs = block.get("inputs")
    if not isinstance(inputs, list) or not all(
        isinstance(i, dict) and isinstance(i.get("run_id"), str) for i in inputs
    ):
        raise SlrbenchError(
            f"{source}: fusion.inputs is {_kind(inputs)}; expected a list of objects each with "
            "run_id (and ids_sha256, checkpoint_sha256)"
        )


def validate_outputs(record: RunRecord, source: str) -> None:
    """Array shapes/dtypes, id hygiene, finite scores, label range, and the meta fields derived
    from the arrays (n_eval, classes_present, ids_sha256). Assumes `validate_meta` passed."""
    meta, ids, labels = record.meta, record.sample_ids, record.labels
    k = meta["num_classes"]
    if ids.ndim != 1 or ids.dtype.kind != "U":
        raise SlrbenchError(
            f"{source}: sample_ids is {ids.dtype} {ids.shape}; expected 1-D unicode"
        )
    n = ids.shape[0]
    if n == 0:
        raise SlrbenchError(f"{source}: sample_ids is empty; expected at least one sample")
    bad = [s for s in ids.tolist() if not s or "\n" in s or s != s.strip()]
    if bad:
        raise SlrbenchError(
            f"{source}: {len(bad)} sample id(s) empty, with a newline or surrounding spaces "
            f"{_show(bad)}; expected canonical ids"
        )
    dup = _duplicates(ids)
    if dup:
        raise SlrbenchError(
            f"{source}: sample_ids has {len(dup)} duplicate id(s) {_show(dup)}; expected unique ids"
        )
    if labels.ndim != 1 or labels.dtype != np.int64 or labels.shape[0] != n:
        raise SlrbenchError(
            f"{source}: labels is {labels.dtype} {labels.shape}; expected int64 ({n},) like "
            "sample_ids"
        )
    _validate_scores(record, source, n, k)
    out = (labels < 0) | (labels >= k)
    if out.any():
        raise SlrbenchError(
            f"{source}: {int(out.sum())} label(s) outside [0, {k}) at ids {_show(ids[out])}, "
            f"values {_show(labels[out])}; expected 0 <= label < num_classes"
        )
    _validate_extras(record, source, n, k)
    _validate_derived(meta, ids, labels, source)


def _validate_scores(record: RunRecord, source: str, n: int, k: int) -> None:
    scores, key = record.scores, SCORE_ARRAY[record.score_kind]
    if record.score_kind == "pred_top1":
        if scores.dtype != np.int64 or scores.shape != (n,):
            raise SlrbenchError(
                f"{source}: pred_top1 is {scores.dtype} {scores.shape}; expected int64 ({n},)"
            )
        out = (scores < 0) | (scores >= k)
        if out.any():
            raise SlrbenchError(
                f"{source}: {int(out.sum())} pred_top1 value(s) outside [0, {k}) at ids "
                f"{_show(record.sample_ids[out])}; expected class indices"
            )
        return
    if scores.dtype != np.float32 or scores.ndim != 2 or scores.shape[0] != n:
        raise SlrbenchError(
            f"{source}: {key} is {scores.dtype} {scores.shape}; expected float32 ({n}, {k})"
        )
    if scores.shape[1] != k:
        raise SlrbenchError(
            f"{source}: {key} has width {scores.shape[1]}; expected num_classes = {k} "
            "(scores in registry class order)"
        )
    finite = np.isfinite(scores).all(axis=1)
    if not finite.all():
        rows = record.sample_ids[~finite]
        raise SlrbenchError(
            f"{source}: {key} has non-finite values in {rows.size} row(s) at ids {_show(rows)}; "
            "expected finite scores"
        )


def _validate_extras(record: RunRecord, source: str, n: int, k: int) -> None:
    for name, arr in record.extras.items():
        if name in RESERVED_ARRAYS or not _EXTRA_RE.match(name):
            raise SlrbenchError(
                f"{source}: extra array name {name!r} is reserved or not an identifier; "
                "expected a name like 'features' or 'per_class_n'"
            )
        if arr.dtype.hasobject:
            raise SlrbenchError(f"{source}: extra '{name}' has dtype object; expected numeric "
                                "or unicode (records are read with allow_pickle=False)")
        rows, what = (k, "num_classes") if name.startswith(PER_CLASS_PREFIX) else (n, "samples")
        if arr.ndim == 0 or arr.shape[0] != rows:
            raise SlrbenchError(
                f"{source}: extra '{name}' has shape {arr.shape}; expected {rows} rows "
                f"(one per {what})"
            )


def _validate_derived(meta: dict[str, Any], ids: np.ndarray, labels: np.ndarray,
                      source: str) -> None:
    n = ids.shape[0]
    if meta["n_eval"] != n:
        raise SlrbenchError(
            f"{source}: n_eval is {meta['n_eval']}; expected {n} (rows of sample_ids)"
        )
    if meta["n_official"] is not None and n > meta["n_official"]:
        raise SlrbenchError(
            f"{source}: n_eval {n} exceeds n_official {meta['n_official']}; expected "
            "n_eval <= n_official (a val + test merged file? set n_official and val_test_merged)"
        )
    present = int(np.unique(labels).size)
    if meta["classes_present"] != present:
        raise SlrbenchError(
            f"{source}: classes_present is {meta['classes_present']}; expected {present} "
            "(distinct labels)"
        )
    digest = sha256_ids(ids.tolist())
    if meta["ids_sha256"] != digest:
        raise SlrbenchError(
            f"{source}: ids_sha256 is {str(meta['ids_sha256'])[:16]}…; expected {digest[:16]}… "
            "(SHA-256 of the newline-joined sample_ids in stored order)"
        )


def validate_record(record: RunRecord, source: str | Path) -> None:
    """Raise `SlrbenchError` naming `source` unless `record` is a complete, consistent record."""
    validate_meta(record.meta, str(source))
    validate_outputs(record, str(source))


# ------------------------------------------------------------------------------ write / read


def runs_dir(store_root: str | Path) -> Path:
    return Path(store_root) / RUNS_DIR


def _check_side_files(side_files: Mapping[str, str | Path] | None, where: Path) -> dict[str, Path]:
    checked: dict[str, Path] = {}
    for name, src in (side_files or {}).items():
        if (not isinstance(name, str) or name in (RUN_JSON, OUTPUTS) or name.startswith(".")
                or "/" in name or "\\" in name or not name.strip()):
            raise SlrbenchError(
                f"{where}: side file name {name!r}; expected a plain file name other than "
                f"{RUN_JSON} and {OUTPUTS}"
            )
        path = Path(src)
        if not path.is_file():
            raise SlrbenchError(f"{path}: side file '{name}' not found; expected an existing file")
        checked[name] = path
    return checked


def _write_contents(directory: Path, record: RunRecord, side: dict[str, Path], final: Path) -> None:
    arrays = {
        "sample_ids": record.sample_ids,
        "labels": record.labels,
        SCORE_ARRAY[record.score_kind]: record.scores,
        **record.extras,
    }
    with open(directory / OUTPUTS, "xb") as f:
        write_npz(f, check_npz_arrays(arrays, str(final / OUTPUTS)))
    text = dumps_json(record.meta, where=str(final / RUN_JSON)) + "\n"
    (directory / RUN_JSON).write_text(text, encoding="utf-8")
    for name, src in side.items():
        shutil.copyfile(src, directory / name)


def stage_record(store_root: str | Path, record: RunRecord,
                 side_files: Mapping[str, str | Path] | None = None) -> StagedDirectory:
    """Validate and write `record` into a temp dir beside its final place; `.commit()` it.

    The store commits under its index lock; `write_record` commits at once.
    """
    source = runs_dir(store_root) / str(record.meta.get("run_id"))
    validate_record(record, source)
    final = runs_dir(store_root) / record.run_id
    side = _check_side_files(side_files, final)
    staged = StagedDirectory(final)
    try:
        _write_contents(staged.path, record, side, final)
    except BaseException:
        staged.discard()
        raise
    return staged


def write_record(store_root: str | Path, record: RunRecord,
                 side_files: Mapping[str, str | Path] | None = None) -> Path:
    """Write `record` to `<store_root>/runs/<run_id>/` atomically and return that path.

    `side_files` maps a file name inside the record to a file to copy there.
    """
    return stage_record(store_root, record, side_files).commit()


def _record_dir(path: str | Path) -> Path:
    path = Path(path)
    if path.name in (RUN_JSON, OUTPUTS) and path.is_file():
        return path.parent
    return path


def read_meta(path: str | Path) -> dict[str, Any]:
    """Parsed run.json of the record at `path` (the run dir or its run.json), unvalidated."""
    run_dir = _record_dir(path)
    file = run_dir / RUN_JSON
    if not run_dir.is_dir():
        raise SlrbenchError(f"{run_dir}: no such record directory; expected a run directory "
                            f"holding {RUN_JSON} and {OUTPUTS}")
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SlrbenchError(f"{file}: missing; expected the record's metadata") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SlrbenchError(f"{file}: unreadable ({exc}); expected UTF-8 JSON") from None
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SlrbenchError(
            f"{file}: invalid JSON at line {exc.lineno} column {exc.colno} ({exc.msg}); "
            "expected a run.json written by slrbench"
        ) from None
    if not isinstance(meta, dict):
        raise SlrbenchError(f"{file}: top level is {_kind(meta)}; expected a JSON object")
    return meta


def _load_npz(file: Path) -> dict[str, np.ndarray]:
    if not file.is_file():
        raise SlrbenchError(f"{file}: missing; expected the record's per-sample outputs")
    try:
        with np.load(file, allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except Exception as exc:
        raise SlrbenchError(
            f"{file}: unreadable npz ({type(exc).__name__}: {exc}); expected an outputs.npz "
            "written by slrbench (read with allow_pickle=False)"
        ) from None


def _take(arrays: dict[str, np.ndarray], name: str, file: Path, kinds: str,
          dtype: Any) -> np.ndarray:
    if name not in arrays:
        raise SlrbenchError(f"{file}: array '{name}' missing (found {sorted(arrays)}); "
                            f"expected sample_ids, labels and the score array")
    arr = arrays.pop(name)
    if arr.dtype.kind not in kinds or (dtype is not None and arr.dtype != dtype):
        want = np.dtype(dtype).name if dtype is not None else "unicode"
        raise SlrbenchError(f"{file}: array '{name}' has dtype {arr.dtype}; expected {want}")
    return arr


def read_record(path: str | Path) -> RunRecord:
    """Read and validate the record at `path` (its directory, run.json or outputs.npz)."""
    run_dir = _record_dir(path)
    meta = read_meta(run_dir)
    validate_meta(meta, str(run_dir / RUN_JSON))
    file = run_dir / OUTPUTS
    arrays = _load_npz(file)
    ids = _take(arrays, "sample_ids", file, "U", None)
    labels = _take(arrays, "labels", file, "iu", np.int64)
    kind = meta["score_kind"]
    if kind == "pred_top1":
        scores = _take(arrays, "pred_top1", file, "iu", np.int64)
    else:
        scores = _take(arrays, SCORE_ARRAY[kind], file, "f", np.float32)
    stray = sorted(set(arrays) & RESERVED_ARRAYS)
    if stray:
        raise SlrbenchError(f"{file}: arrays {stray} do not match score_kind {kind!r}; expected "
                            f"only '{SCORE_ARRAY[kind]}' as scores")
    record = RunRecord(meta, ids, labels, scores, arrays)
    validate_outputs(record, str(file))
    return record
