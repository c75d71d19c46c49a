"""Score-file readers, one per upstream format (docs/importing.md#formats). Each returns the
rows as the file has them: ids (as written there), scores, and labels where the file or its
label/annotation file states them. Alignment to the registry happens afterwards, by id.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from slrbench.errors import SlrbenchError
from slrbench.safe_pickle import load_pickle


@dataclass
class ScoreTable:
    """An external score file, read: row i is (ids[i], scores[i], labels[i] if known)."""

    ids: list[str]
    scores: np.ndarray  # (N, K) float64
    labels: np.ndarray | None  # (N,) int64 as stated by the file, or None
    score_kind: str  # logits, probs or log_probs
    positional: bool  # ids came from a separate order file, matched by position
    label_names: list[str] | None = None  # class names per row (NLA-SLR `ref`), when stated


@dataclass(frozen=True)
class ReadRequest:
    """What the command line says about the file (paths already checked to exist)."""

    path: Path
    labels: Path | None = None
    ids: Path | None = None
    split: str = "test"
    score_kind: str | None = None  # None: the format's default
    head: str = "ensemble_last"  # nlaslr: which output to import
    classes: tuple[str, ...] = ()  # the registry's class names (nlaslr columns are by name)


# ----------------------------------------------------------------------------- helpers


def _score_row(value: Any, where: str) -> np.ndarray:
    row = np.asarray(value)
    if row.dtype == object or not (np.issubdtype(row.dtype, np.number)
                                   and not np.issubdtype(row.dtype, np.complexfloating)):
        raise SlrbenchError(f"{where}: scores of dtype {row.dtype}; expected real numbers")
    row = (np.squeeze(row) if row.ndim > 1 else row).astype(np.float64)  # (1, K) rows too
    if row.ndim != 1:
        raise SlrbenchError(f"{where}: scores of shape {row.shape}; expected one row of K "
                            "class scores")
    return row


def _stack(rows: Sequence[np.ndarray], ids: Sequence[str], source: Path) -> np.ndarray:
    widths = {row.shape[0] for row in rows}
    if len(widths) > 1:
        first = rows[0].shape[0]
        odd = next(i for i, row in enumerate(rows) if row.shape[0] != first)
        raise SlrbenchError(f"{source}: row {ids[odd]!r} has {rows[odd].shape[0]} scores; "
                            f"expected {first} like row {ids[0]!r} (one per class)")
    if not rows:
        raise SlrbenchError(f"{source}: no score rows; expected one row per sample")
    return np.stack(rows)


def _labels(values: Sequence[Any], where: str) -> np.ndarray:
    out = []
    for value in values:
        label = np.asarray(value).reshape(-1)
        if label.size != 1 or not np.issubdtype(label.dtype, np.integer):
            raise SlrbenchError(f"{where}: label {value!r:.40}; expected one integer class "
                                "index per sample")
        out.append(int(label[0]))
    return np.asarray(out, dtype=np.int64)


def _order_file(path: Path | None, split: str, fmt: str) -> tuple[list[str], np.ndarray | None]:
    """Ids in file order (and labels, when stated) from --ids: a text file of one id per line,
    or a pyskl annotation pickle ({"split": {name: [ids]}, "annotations": [...]})."""
    if path is None:
        raise SlrbenchError(f"--ids: missing; format '{fmt}' stores scores by position, so it "
                            "needs the ordered ids (a text file, or the annotation pickle)")
    if path.suffix in (".pkl", ".pickle", ".gz"):
        return _annotation_order(load_pickle(path), path, split)
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line], None


def _annotation_order(data: Any, path: Path, split: str) -> tuple[list[str], np.ndarray | None]:
    if not (isinstance(data, dict) and isinstance(data.get("annotations"), list)):
        raise SlrbenchError(f"{path}: not a pyskl annotation file; expected a dict with "
                            "'split' and 'annotations'")
    splits = data.get("split") or {}
    names = [key for key in splits if key == split or key.endswith("_" + split)]
    if len(names) != 1:
        raise SlrbenchError(f"{path}: split lists {sorted(splits)}; expected exactly one named "
                            f"'{split}' (or ending in '_{split}')")
    wanted = {str(i) for i in splits[names[0]]}
    entries = [a for a in data["annotations"]
               if isinstance(a, dict) and str(a.get("frame_dir")) in wanted]
    ids = [str(a["frame_dir"]) for a in entries]
    has_labels = all("label" in a for a in entries)
    return ids, _labels([a["label"] for a in entries], str(path)) if has_labels else None


# ----------------------------------------------------------------------------- formats


def read_samslr(request: ReadRequest) -> ScoreTable:
    """SL-GCN family: {sample name: scores (K,)} plus a (names, labels) label pickle."""
    data = load_pickle(request.path)
    if not isinstance(data, dict) or not data:
        raise SlrbenchError(f"{request.path}: found {type(data).__name__}; expected a dict "
                            "{sample name: class scores}")
    ids = [str(key) for key in data]
    rows = [_score_row(value, f"{request.path} [{key!r}]") for key, value in data.items()]
    labels, names = None, None
    if request.labels is not None:
        pair = load_pickle(request.labels)
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2
                and len(pair[0]) == len(pair[1])):
            raise SlrbenchError(f"{request.labels}: expected a (names, labels) pair of equal "
                                "length, as SL-GCN's label pickles")
        names = [str(n) for n in pair[0]]
        by_name = dict(zip(names, _labels(list(pair[1]), str(request.labels)), strict=True))
        missing = [i for i in ids if i not in by_name]
        extra = len(set(by_name) - set(ids))
        if missing or extra:
            raise SlrbenchError(
                f"{request.labels}: {len(missing)} score key(s) without a label (e.g. "
                f"{missing[:3]}) and {extra} label name(s) without scores; expected the same "
                f"names as {request.path}")
        labels = np.array([by_name[i] for i in ids], dtype=np.int64)
    return ScoreTable(ids, _stack(rows, ids, request.path), labels,
                      request.score_kind or "logits", positional=False)


def read_pyskl(request: ReadRequest) -> ScoreTable:
    """pyskl `--out`: a list of score arrays in annotation order."""
    data = load_pickle(request.path)
    if not isinstance(data, (list, tuple)) or (data and isinstance(data[0], dict)):
        raise SlrbenchError(f"{request.path}: found {type(data).__name__}; expected a list of "
                            "score arrays (pyskl --out); mmaction2 dumps of dicts are format "
                            "'mmaction'")
    ids, labels = _order_file(request.ids, request.split, "pyskl")
    rows = [_score_row(v, f"{request.path} [row {i}]") for i, v in enumerate(data)]
    _check_lengths(len(rows), len(ids), request)
    return ScoreTable(ids, _stack(rows, ids, request.path), labels,
                      request.score_kind or "probs", positional=True)


def read_mmaction(request: ReadRequest) -> ScoreTable:
    """mmaction2 `--dump`: a list of dicts with `pred_score` (and `gt_label`), in order."""
    data = load_pickle(request.path)
    if not isinstance(data, (list, tuple)) or not all(
            isinstance(d, dict) and "pred_score" in d for d in data):
        raise SlrbenchError(f"{request.path}: expected a list of dicts with 'pred_score' "
                            "(mmaction2 --dump)")
    ids, order_labels = _order_file(request.ids, request.split, "mmaction")
    _check_lengths(len(data), len(ids), request)
    rows = [_score_row(d["pred_score"], f"{request.path} [row {i}]") for i, d in enumerate(data)]
    labels = (_labels([d["gt_label"] for d in data], str(request.path))
              if all("gt_label" in d for d in data) else order_labels)
    if order_labels is not None and labels is not None and not np.array_equal(labels,
                                                                             order_labels):
        bad = int(np.flatnonzero(labels != order_labels)[0])
        raise SlrbenchError(f"{request.path}: gt_label at row {bad} is {labels[bad]}; expected "
                            f"{order_labels[bad]} from {request.ids} (rows out of order?)")
    return ScoreTable(ids, _stack(rows, ids, request.path), labels,
                      request.score_kind or "probs", positional=True)


def read_nlaslr(request: ReadRequest) -> ScoreTable:
    """NLA-SLR results: {name: {"<head>prob": probs, "ref": gloss, ...}}; columns follow
    NLA-SLR's vocabulary (the sorted class names), so they are put in registry order by name."""
    data = load_pickle(request.path)
    key = f"{request.head}prob"
    if not isinstance(data, dict) or not all(isinstance(v, dict) and key in v
                                             for v in data.values()):
        raise SlrbenchError(f"{request.path}: expected {{name: {{'{key}': probabilities, "
                            "'ref': gloss}}}} (NLA-SLR results; --head picks the output)")
    if not request.classes:
        raise SlrbenchError(f"{request.path}: format 'nlaslr' needs the dataset's class names "
                            "to reorder its columns; the registry ships none for this dataset")
    ids = [str(k) for k in data]
    rows = [_score_row(v[key], f"{request.path} [{k!r}]") for k, v in data.items()]
    scores = _stack(rows, ids, request.path)
    vocabulary = sorted(request.classes)  # NLA-SLR's column order
    if scores.shape[1] != len(vocabulary):
        raise SlrbenchError(f"{request.path}: {scores.shape[1]} columns; expected "
                            f"{len(vocabulary)}, one per class")
    column = {name: j for j, name in enumerate(vocabulary)}
    scores = scores[:, [column[name] for name in request.classes]]
    refs = [str(v.get("ref")) if "ref" in v else None for v in data.values()]
    return ScoreTable(ids, scores, None, request.score_kind or "probs", positional=False,
                      label_names=None if None in refs else [str(r) for r in refs])


def read_npz(request: ReadRequest) -> ScoreTable:
    """`.npz` with `sample_ids` and `scores` (or `logits` / `probs` / `log_probs`), optionally
    `labels`; read with allow_pickle=False."""
    try:
        with np.load(request.path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except ValueError as exc:
        raise SlrbenchError(f"{request.path}: {exc}; expected plain arrays (no pickled "
                            "objects)") from None
    except OSError as exc:
        raise SlrbenchError(f"{request.path}: not an .npz file ({exc})") from None
    id_key = next((k for k in ("sample_ids", "ids") if k in arrays), None)
    score_key = next((k for k in ("scores", "logits", "probs", "log_probs") if k in arrays),
                     None)
    if id_key is None or score_key is None:
        raise SlrbenchError(f"{request.path}: arrays {sorted(arrays)}; expected 'sample_ids' and "
                            "'scores' (or 'logits', 'probs', 'log_probs')")
    ids = [str(i) for i in arrays[id_key].tolist()]
    scores = np.asarray(arrays[score_key], dtype=np.float64)
    if scores.ndim != 2 or scores.shape[0] != len(ids):
        raise SlrbenchError(f"{request.path}: {score_key} of shape {scores.shape}; expected "
                            f"({len(ids)}, K), one row per id")
    labels = _labels(arrays["labels"].tolist(), str(request.path)) if "labels" in arrays \
        else None
    kind = request.score_kind or (score_key if score_key != "scores" else "logits")
    return ScoreTable(ids, scores, labels, kind, positional=False)


def read_csv(request: ReadRequest) -> ScoreTable:
    """CSV with a header: `sample_id`, optional `label`, then one column per class in class
    order."""
    with open(request.path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if len(rows) < 2 or not rows[0] or rows[0][0] != "sample_id":
        raise SlrbenchError(f"{request.path}: header {rows[0][:3] if rows else []}; expected "
                            "'sample_id', an optional 'label', then one column per class")
    has_label = len(rows[0]) > 1 and rows[0][1] == "label"
    first = 2 if has_label else 1
    ids, labels, values = [], [], []
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(rows[0]):
            raise SlrbenchError(f"{request.path}:{number}: {len(row)} fields; expected "
                                f"{len(rows[0])} like the header")
        try:
            values.append([float(v) for v in row[first:]])
            if has_label:
                labels.append(int(row[1]))
        except ValueError:
            raise SlrbenchError(f"{request.path}:{number}: a value that is not a number; "
                                "expected numeric scores (and an integer label)") from None
        ids.append(row[0])
    return ScoreTable(ids, np.asarray(values, dtype=np.float64),
                      np.asarray(labels, dtype=np.int64) if has_label else None,
                      request.score_kind or "logits", positional=False)


def _check_lengths(rows: int, ids: int, request: ReadRequest) -> None:
    if rows != ids:
        raise SlrbenchError(f"{request.path}: {rows} score rows; expected {ids}, one per id in "
                            f"{request.ids} (a positional file must match its order file)")


READERS: dict[str, Callable[[ReadRequest], ScoreTable]] = {
    "samslr": read_samslr,
    "pyskl": read_pyskl,
    "mmaction": read_mmaction,
    "nlaslr": read_nlaslr,
    "npz": read_npz,
    "csv": read_csv,
}
FORMATS: tuple[str, ...] = tuple(READERS)
