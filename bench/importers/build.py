"""External score files -> ordinary records (docs/importing.md): read through a format reader,
match ids to the registry (suffixes stripped), align rows by id, check labels, score, store.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from slrbench import __version__
from slrbench.datasets.official import SplitTable, canonical_id, official_split
from slrbench.datasets.registry import DatasetEntry, get_entry
from slrbench.errors import SlrbenchError
from slrbench.importers.readers import FORMATS, READERS, ReadRequest, ScoreTable
from slrbench.metrics import (
    DEFAULT_BOOTSTRAP,
    METRIC_DEFINITIONS_VERSION,
    BootstrapConfig,
    evaluate,
)
from slrbench.store.provenance import (
    config_sha256,
    environment,
    git_info,
    sha256_file,
    sha256_ids,
    utc_now,
)
from slrbench.store.record_store import RecordStore
from slrbench.store.records import RECORD_VERSION, SCORE_KINDS, RunRecord, new_run_id

SELECTION_SPLITS = ("val", "test", "unknown")
POSITIONAL_FORMATS = ("pyskl", "mmaction")  # rows matched to ids by position in --ids
IMPORT_SCORE_KINDS = tuple(k for k in SCORE_KINDS if k != "pred_top1")
# Video-file decorations that score files keep in their sample names (AUTSL `_color.mp4`).
_SHOWN = 3  # ids quoted in an error


@dataclass(frozen=True)
class ImportRequest:
    path: Path
    format: str
    dataset: str
    split: str
    method: str
    stream: str
    labels: Path | None = None
    ids: Path | None = None
    selection_split: str = "unknown"
    score_kind: str | None = None
    head: str = "ensemble_last"
    command: str = ""
    bootstrap: BootstrapConfig | None = DEFAULT_BOOTSTRAP

    def check(self) -> DatasetEntry:
        """Refuse bad options before any file is read; returns the dataset's entry."""
        if self.format not in READERS:
            raise SlrbenchError(f"--format: unknown format '{self.format}'; expected one of "
                                f"{', '.join(FORMATS)}")
        if self.selection_split not in SELECTION_SPLITS:
            raise SlrbenchError(f"--selection-split: found '{self.selection_split}'; expected "
                                f"one of {', '.join(SELECTION_SPLITS)}")
        if self.score_kind is not None and self.score_kind not in IMPORT_SCORE_KINDS:
            raise SlrbenchError(f"--score-kind: found '{self.score_kind}'; expected one of "
                                f"{', '.join(IMPORT_SCORE_KINDS)}")
        for option, name in (("--method", self.method), ("--stream", self.stream)):
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}", name):
                raise SlrbenchError(f"{option}: found {name!r}; expected letters, digits and "
                                    "_ . + - (at most 64, starting with a letter or digit)")
        if self.format in POSITIONAL_FORMATS and self.ids is None:
            raise SlrbenchError(f"--ids: missing; format '{self.format}' stores scores by "
                                "position, so it needs the ordered ids (a text file, or the "
                                "annotation pickle)")
        entry = get_entry(self.dataset)
        # A size of None means "no such split" for a real dataset, "generated" for SynthSign.
        known = [s for s, n in entry.split_sizes.items() if n is not None or entry.synthetic]
        if self.split not in known:
            raise SlrbenchError(f"--split: found '{self.split}' for {self.dataset}; expected one "
                                f"of {', '.join(known)}")
        for option, path in (("FILE", self.path), ("--labels", self.labels),
                             ("--ids", self.ids)):
            if path is not None and not Path(path).is_file():
                raise SlrbenchError(f"{option} {path}: no such file; expected the file to import")
        return entry


def import_scores(request: ImportRequest, store: RecordStore) -> RunRecord:
    """Read, check, align and store one imported record; returns it."""
    entry = request.check()
    table = official_split(request.dataset, request.split)
    read = READERS[request.format](ReadRequest(
        path=Path(request.path), labels=request.labels, ids=request.ids, split=request.split,
        score_kind=request.score_kind, head=request.head,
        classes=table.classes if table is not None else ()))
    source = str(request.path)
    if read.scores.shape[1] != entry.num_classes:
        raise SlrbenchError(f"{source}: {read.scores.shape[1]} scores per row; expected "
                            f"{entry.num_classes}, the classes of {request.dataset}")
    if not np.isfinite(read.scores).all():
        bad = int((~np.isfinite(read.scores).all(axis=1)).sum())
        raise SlrbenchError(f"{source}: non-finite scores in {bad} row(s); expected finite "
                            "numbers")
    ids = [canonical_id(i, table) for i in read.ids]
    aligned = (align_to_registry(read, ids, table, source) if table is not None
               else _unregistered(read, ids, entry, request))
    record = _record(request, entry, table, *aligned)
    store.add(record)
    return record


def align_to_registry(read: ScoreTable, ids: list[str], table: SplitTable,
                      source: str) -> tuple[list[str], np.ndarray, np.ndarray, list[str]]:
    """(ids, scores, labels, missing ids) in registry order; errors name counts and examples."""
    seen: dict[str, int] = {}
    duplicates: list[str] = []
    for row, sample_id in enumerate(ids):
        if sample_id in seen:
            duplicates.append(sample_id)
        seen[sample_id] = row
    if duplicates:
        raise SlrbenchError(f"{source}: {len(duplicates)} duplicated id(s) (e.g. "
                            f"{_examples(duplicates)}); expected each sample once")
    unknown = [i for i in ids if table.row(i) is None]
    if unknown:
        raise SlrbenchError(f"{source}: {len(unknown)} of {len(ids)} id(s) not in the official "
                            f"{table.split} split of {table.dataset} (e.g. {_examples(unknown)})"
                            f"{_elsewhere(unknown, table)}; expected ids of that split")
    order = sorted(seen, key=lambda i: table.row(i) or 0)
    rows = np.array([seen[i] for i in order])
    registry = np.array([table.labels[table.row(i) or 0] for i in order], dtype=np.int64)
    stated = _stated_labels(read, table, source)
    if stated is not None:
        differ = np.flatnonzero(stated[rows] != registry)
        if differ.size:
            shown = ", ".join(f"{order[j]}: {stated[rows][j]} vs {registry[j]}"
                              for j in differ[:_SHOWN])
            raise SlrbenchError(
                f"{source}: {differ.size} label(s) differ from the registry ({shown}); expected "
                f"the official labels of {table.dataset} (another class order?)")
    missing = [i for i in table.ids if i not in seen]
    return order, read.scores[rows], registry, missing


def _stated_labels(read: ScoreTable, table: SplitTable, source: str) -> np.ndarray | None:
    if read.labels is not None:
        return read.labels
    if read.label_names is None:
        return None
    index = {name: k for k, name in enumerate(table.classes)}
    unknown = sorted({n for n in read.label_names if n not in index})
    if unknown:
        raise SlrbenchError(f"{source}: {len(unknown)} class name(s) not in the class list of "
                            f"{table.dataset} (e.g. {_examples(unknown)}); expected its glosses")
    return np.array([index[n] for n in read.label_names], dtype=np.int64)


def _unregistered(read: ScoreTable, ids: list[str], entry: DatasetEntry,
                  request: ImportRequest) -> tuple[list[str], np.ndarray, np.ndarray, list[str]]:
    """A dataset whose ids slrbench does not ship: labels must come with the file, rows are
    ordered by id, and the count may not exceed the official split size."""
    source = str(request.path)
    if read.labels is None:
        raise SlrbenchError(f"{source}: no labels, and the registry ships no labels for "
                            f"{entry.name}; expected --labels (or a format that stores them)")
    if len(set(ids)) != len(ids):
        duplicates = sorted(i for i, n in Counter(ids).items() if n > 1)
        raise SlrbenchError(f"{source}: {len(duplicates)} duplicated id(s) (e.g. "
                            f"{_examples(duplicates)}); expected each sample once")
    official = entry.split_sizes.get(request.split)
    if official is not None and len(ids) > official:
        raise SlrbenchError(f"{source}: {len(ids)} rows; expected at most {official}, the "
                            f"official {request.split} size of {entry.name} (val and test "
                            "merged?)")
    if (read.labels < 0).any() or (read.labels >= entry.num_classes).any():
        raise SlrbenchError(f"{source}: labels outside [0, {entry.num_classes}); expected class "
                            f"indices of {entry.name}")
    order = sorted(range(len(ids)), key=lambda r: ids[r])
    return [ids[r] for r in order], read.scores[order], read.labels[order], []


def _record(request: ImportRequest, entry: DatasetEntry, table: SplitTable | None,
            ids: list[str], scores: np.ndarray, labels: np.ndarray,
            missing: list[str]) -> RunRecord:
    tic = time.perf_counter()
    kind = _score_kind(request)
    evaluation = evaluate(scores, labels, entry.num_classes, bootstrap=request.bootstrap)
    config = {"imported": True, "format": request.format, "score_kind": kind,
              **({"head": request.head} if request.format == "nlaslr" else {})}
    n_official = len(table.ids) if table is not None else entry.split_sizes.get(request.split)
    tuned_on_scored = request.selection_split == request.split
    meta: dict[str, Any] = {
        "record_version": RECORD_VERSION,
        "method": request.method, "adapter_version": None, "preset": None,
        "stream": request.stream, "seed": None, "reconstruction": False, "decisions": [],
        "dataset": entry.name, "subset": entry.name, "split": request.split,
        "split_version": "official" if table is not None else None,
        "split_sha256": table.split_sha256 if table is not None else None,
        "vocab_sha256": table.vocab_sha256 if table is not None else None,
        "num_classes": entry.num_classes, "n_eval": len(ids), "n_official": n_official,
        "missing_ids": missing, "classes_present": evaluation.classes_present,
        "ids_sha256": sha256_ids(ids), "pose": None,
        "config": config, "config_sha256": config_sha256(config),
        **git_info(Path(__file__).resolve().parent),
        "env": environment(None), "checkpoint": None, "checkpoint_sha256": None, "params": None,
        "selection_split": request.selection_split, "selection_metric": None,
        "selected_epoch": None, "test_protocol": None, "score_kind": kind,
        "test_tuned": tuned_on_scored, "val_test_merged": False,
        "leaky_reasons": ([f"selection split declared '{request.split}', the scored split"]
                          if tuned_on_scored else []),
        "metrics": evaluation.to_dict()["metrics"], "chance": evaluation.chance,
        "metric_definitions_version": METRIC_DEFINITIONS_VERSION,
        "bootstrap": request.bootstrap.to_dict() if request.bootstrap else None,
        "started_at": None, "finished_at": utc_now(),
        "wall_time_s": round(time.perf_counter() - tic, 3),
        "slrbench_version": __version__,
        "imported": _provenance(request),
    }
    meta["run_id"] = new_run_id({k: meta[k] for k in ("method", "dataset", "split", "stream",
                                                      "seed", "config_sha256")})
    return RunRecord(meta=meta, sample_ids=np.asarray(ids), labels=labels,
                     scores=scores.astype(np.float32),
                     extras={f"per_class_{k.replace('@', '')}": v
                             for k, v in evaluation.per_class.items()})


def _score_kind(request: ImportRequest) -> str:
    if request.score_kind is not None:
        return request.score_kind
    return {"samslr": "logits", "pyskl": "probs", "mmaction": "probs", "nlaslr": "probs",
            "csv": "logits"}.get(request.format, "logits")


def _provenance(request: ImportRequest) -> dict[str, Any]:
    """Where the numbers came from: every file read, with its SHA-256, and the command."""
    files = {"scores": request.path, "labels": request.labels, "ids": request.ids}
    return {
        "format": request.format,
        "files": {role: {"name": Path(path).name, "sha256": sha256_file(path)}
                  for role, path in files.items() if path is not None},
        "selection_split": request.selection_split,
        "command": request.command,
    }


def _examples(ids: list[str]) -> str:
    shown = ", ".join(repr(i) for i in ids[:_SHOWN])
    return shown + (", …" if len(ids) > _SHOWN else "")


def _elsewhere(unknown: list[str], table: SplitTable) -> str:
    """Where the unknown ids do belong (a val+test merged file is the classic case)."""
    counts = []
    for split in ("train", "val", "test"):
        if split == table.split:
            continue
        try:
            other = official_split(table.dataset, split)
        except SlrbenchError:
            continue
        if other is not None:
            inside = sum(other.row(i) is not None for i in unknown)
            if inside:
                counts.append(f"{inside} are {split} ids")
    return f"; {', '.join(counts)}" if counts else ""
