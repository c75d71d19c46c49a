"""`slrbench prepare`: read a user's copy of a real dataset, check it against the registry and
write the prepared copy (docs/datasets/prepare.md).

Checks, each a one-line error naming the file or sample, what was found and what was expected
(`drop_invalid` turns the per-sample ones into dropped samples, counted in the report):

* ids against the official splits where slrbench ships them: every sample goes to the official
  split of its id, whatever the file called it (WLASL's merged val + test evaluation file of
  6,794 rows is split back into val and test this way, and the report says so); ids outside the
  dataset's splits (other WLASL subsets, say) are skipped and counted;
* labels: in range, and equal to the official label of the id where one is shipped (a copy in
  another class order, such as SLR500's `gloss_label.txt` order, fails here);
* keypoints: shape (T, V, 3) of the layout, finite, at least one frame with a detected point;
* duplicate ids within or across splits.

Datasets without a validation split (SLR500, NMFs-CSL) get one carved from train: 10 % of each
class, by whole signers where signers are known (docs/evaluation.md#splits-and-selection).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from slrbench.datasets.base import SPLITS
from slrbench.datasets.layouts import get_layout
from slrbench.datasets.official import signer_of
from slrbench.datasets.prepared import META, PREPARED_VERSION, content_digest
from slrbench.datasets.sources import SourceCopy, SourceSplit
from slrbench.errors import SlrbenchError

VAL_FRACTION = 0.1  # of each class, carved from train where a dataset has no val split
SHOWN = 5  # example ids in an error line


@dataclass
class Sample:
    """One sample of the copy after split assignment: where it comes from."""

    sample_id: str
    label: int
    source: SourceSplit
    row: int  # index into the source split
    signer: str | None = None


@dataclass
class Report:
    """What prepare found, per split: counts, dropped samples, notes."""

    dataset: str
    found: dict[str, int] = field(default_factory=dict)
    official: dict[str, int | None] = field(default_factory=dict)
    dropped: Counter[str] = field(default_factory=Counter)
    skipped_outside: int = 0
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = []
        for split, n in self.found.items():
            official = self.official.get(split)
            share = f" / {official} official ({100 * n / official:.1f} %)" if official else ""
            out.append(f"{split}: {n} samples{share}")
        if self.skipped_outside:
            out.append(f"skipped {self.skipped_outside} samples outside {self.dataset}'s splits")
        for reason, count in sorted(self.dropped.items()):
            out.append(f"dropped {count} samples: {reason}")
        return out + self.notes


def _examples(items: Iterable[str]) -> str:
    items = list(items)
    more = f" (and {len(items) - SHOWN} more)" if len(items) > SHOWN else ""
    return ", ".join(items[:SHOWN]) + more


# ------------------------------------------------------------------------------- labels
def _resolve_labels(copy: SourceCopy, name: str, split: SourceSplit,
                    classes: tuple[str, ...]) -> np.ndarray | None:
    """The split's labels as registry class indices (None when the copy has none)."""
    if split.labels is None:
        return None
    labels = np.asarray(split.labels)
    if labels.shape != (len(split.ids),):
        raise SlrbenchError(f"{copy.format} split '{name}': {labels.shape} labels for "
                            f"{len(split.ids)} ids; expected one label per id")
    if copy.classes is not None:  # the copy's own class order: map by gloss string
        index = {gloss: k for k, gloss in enumerate(classes)}
        if not any(g in index for g in copy.classes):
            raise SlrbenchError(f"{copy.format} vocabulary: none of its glosses (e.g. "
                                f"{_examples(list(copy.classes))}) is a class of the dataset; "
                                f"expected glosses of its {len(classes)}-class list")
        if labels.min(initial=0) < 0 or labels.max(initial=0) >= len(copy.classes):
            raise SlrbenchError(f"{copy.format} split '{name}': labels outside 0.."
                                f"{len(copy.classes) - 1}; expected indices of its vocabulary")
        # A gloss outside the dataset (WLASL2000 glosses read for WLASL100) becomes -1: its
        # samples are outside the dataset unless an official id says otherwise.
        table = np.array([index.get(g, -1) for g in copy.classes], dtype=np.int64)
        return table[labels.astype(np.int64)]
    return labels.astype(np.int64)


# ------------------------------------------------------------------------ split assignment
def assign(copy: SourceCopy, dataset: str, classes: tuple[str, ...],
           official: dict[str, Any], report: Report) -> dict[str, list[Sample]]:
    """Samples per slrbench split. With official ids, by the official split of each id; else
    by the copy's split names (`train`, `val`, `test`)."""
    assigned: dict[str, list[Sample]] = {s: [] for s in SPLITS}
    where: dict[str, str] = {}
    have_ids = any(table is not None for table in official.values())
    subset = len(classes) < _largest_subset(dataset)  # WLASL100 of WLASL2000, ...
    for name, split in copy.splits.items():
        labels = _resolve_labels(copy, name, split, classes)
        seen = Counter(split.ids)
        repeated = [i for i, c in seen.items() if c > 1]
        if repeated:
            raise SlrbenchError(f"{copy.format} split '{name}': ids {_examples(repeated)} occur "
                                "more than once; expected each sample once")
        moved: Counter[str] = Counter()
        for row, sample_id in enumerate(split.ids):
            target, label = _place(sample_id, name, official, have_ids)
            if target is None:
                report.skipped_outside += 1
                continue
            if labels is not None:
                outside = not 0 <= int(labels[row]) < len(classes)
                if label is None and outside and subset:
                    # No official id to place it: a class beyond a subset's first K glosses
                    # (MS-ASL1000 training samples read for MS-ASL100) is outside the subset.
                    report.skipped_outside += 1
                    continue
                if label is not None and int(labels[row]) != label:
                    raise SlrbenchError(
                        f"{copy.format} split '{name}', sample {sample_id}: label "
                        f"{int(labels[row])} ({_gloss(classes, int(labels[row]))}); expected "
                        f"the official {label} ({_gloss(classes, label)}): is the copy in "
                        "another class order?")
                label = int(labels[row])
            if label is None:
                raise SlrbenchError(f"{copy.format} split '{name}', sample {sample_id}: no "
                                    f"label, and {dataset} ships none for it; expected a copy "
                                    "with labels")
            if not 0 <= label < len(classes):
                raise SlrbenchError(f"{copy.format} split '{name}', sample {sample_id}: label "
                                    f"{label}; expected 0..{len(classes) - 1}")
            if sample_id in where:
                raise SlrbenchError(f"sample {sample_id}: in the copy's splits '{where[sample_id]}'"
                                    f" and '{name}'; expected each sample in one split")
            where[sample_id] = name
            moved[target] += 1
            signer = (split.signers[row] if split.signers is not None
                      else signer_of(dataset, sample_id))
            assigned[target].append(Sample(sample_id, label, split, row, signer))
        if have_ids and name in SPLITS and set(moved) - {name}:
            parts = ", ".join(f"{n} {s}" for s, n in sorted(moved.items()))
            report.notes.append(f"the copy's '{name}' split held {parts} samples by the official "
                                "ids; each went to its official split" + (
                                    " (a merged val + test evaluation file)"
                                    if set(moved) == {"val", "test"} else ""))
    if not any(assigned.values()):
        raise SlrbenchError(f"{copy.format} copy: none of its {len(where) + report.skipped_outside}"
                            f" samples belongs to {dataset}'s splits; expected ids of {dataset}")
    return assigned


def _largest_subset(dataset: str) -> int:
    """Classes of the largest registry dataset `dataset` is a subset of (WLASL100 -> 2000)."""
    from slrbench.datasets.registry import REGISTRY

    family = dataset.rstrip("0123456789")
    return max((e.num_classes for name, e in REGISTRY.items()
                if name.rstrip("0123456789") == family and family), default=0)


def _place(sample_id: str, name: str, official: dict[str, Any],
           have_ids: bool) -> tuple[str | None, int | None]:
    """(slrbench split, official label) of one id; (None, None) outside the dataset."""
    if have_ids:
        for split, table in official.items():
            row = table.row(sample_id) if table is not None else None
            if row is not None:
                return split, int(table.labels[row])
        if name in SPLITS and official.get(name) is None:  # a split slrbench ships no ids for
            return name, None
        return None, None
    if name not in SPLITS:
        raise SlrbenchError(f"split '{name}': the dataset ships no official ids to place its "
                            f"samples; expected splits named {', '.join(SPLITS)}")
    return name, None


def _gloss(classes: tuple[str, ...], label: int) -> str:
    return repr(classes[label]) if 0 <= label < len(classes) else "out of range"


def carve_val(assigned: dict[str, list[Sample]], report: Report, seed: int = 0,
              val_signers: tuple[str, ...] = ()) -> None:
    """A val split for datasets without one, where signers are known: the registry's held-out
    signers (`val_signers`), else 10 % of the training signers drawn with `seed`; where they are
    not, 10 % of each class. No signer is in both."""
    train = assigned["train"]
    rng = np.random.default_rng(seed)
    if train and all(s.signer is not None for s in train):
        signers = sorted({str(s.signer) for s in train})
        if set(val_signers) & set(signers):
            held = set(val_signers) & set(signers)
        else:
            count = max(1, round(VAL_FRACTION * len(signers)))
            held = set(rng.choice(signers, size=count, replace=False).tolist())
        assigned["val"] = [s for s in train if s.signer in held]
        assigned["train"] = [s for s in train if s.signer not in held]
        report.notes.append(f"val carved from train: signers {', '.join(sorted(held))} "
                            f"({len(assigned['val'])} samples; the dataset has no val split)")
        return
    by_class: dict[int, list[int]] = {}
    for i, sample in enumerate(train):
        by_class.setdefault(sample.label, []).append(i)
    chosen: set[int] = set()
    for members in by_class.values():
        take = max(1, round(VAL_FRACTION * len(members))) if len(members) > 1 else 0
        chosen.update(rng.choice(members, size=take, replace=False).tolist())
    assigned["val"] = [s for i, s in enumerate(train) if i in chosen]
    assigned["train"] = [s for i, s in enumerate(train) if i not in chosen]
    report.notes.append(f"val carved from train: 10 % of each class ({len(chosen)} samples; the "
                        "dataset has no val split and the copy names no signers)")


# ----------------------------------------------------------------------------- keypoints
def check_keypoints(sample: Sample, layout: str) -> tuple[np.ndarray | None, str | None]:
    """(T, V, 3) float32 keypoints of a sample, or None and why they are unusable."""
    pose = sample.source.pose
    assert pose is not None
    points = np.asarray(pose.load(sample.row), dtype=np.float32)
    nodes = get_layout(layout).num_nodes
    if points.ndim != 3 or points.shape[1:] != (nodes, 3):
        raise SlrbenchError(f"sample {sample.sample_id}: keypoints of shape {points.shape}; "
                            f"expected (T, {nodes}, 3) for layout {layout}")
    if points.shape[0] == 0:
        return None, "no frames"
    if not np.isfinite(points).all():
        return None, "NaN or infinite keypoints"
    if not (points[..., 2] > 0).any():
        return None, "no detected keypoint in any frame"
    return points, None


def _keypoint_splits(assigned: dict[str, list[Sample]], layout: str, drop_invalid: bool,
                     report: Report, progress: Callable[[], None]
                     ) -> dict[str, list[np.ndarray]]:
    """Checked keypoints per split (samples with unusable ones dropped or refused)."""
    kept: dict[str, list[np.ndarray]] = {}
    bad: dict[str, list[str]] = {}
    for split, samples in assigned.items():
        arrays, keep = [], []
        for sample in samples:
            points, reason = check_keypoints(sample, layout)
            progress()
            if points is None:
                assert reason is not None
                bad.setdefault(reason, []).append(f"{sample.sample_id} ({split})")
                continue
            arrays.append(points)
            keep.append(sample)
        assigned[split] = keep
        kept[split] = arrays
    for reason, ids in bad.items():
        if not drop_invalid:
            raise SlrbenchError(f"{len(ids)} samples with {reason}: {_examples(ids)}; expected "
                                "usable keypoints (--drop-invalid drops and counts them)")
        report.dropped[reason] += len(ids)
    return kept


# --------------------------------------------------------------------------------- write
@dataclass
class PrepareResult:
    folder: Path
    report: Report
    meta: dict[str, Any]


def prepare(copy: SourceCopy, dataset: str, out: Path, drop_invalid: bool = False,
            videos: SourceCopy | None = None,
            progress: Callable[[], None] | None = None) -> PrepareResult:
    """Check `copy` (keypoints, labels) and `videos` (optional, joined by id) against the
    registry and write the prepared copy to `out` (replacing it atomically)."""
    from slrbench.datasets.official import official_split
    from slrbench.datasets.registry import get_entry

    entry = get_entry(dataset)
    official = {s: official_split(dataset, s) for s in entry.split_sizes}
    classes = _classes(dataset, official, entry.num_classes, copy)
    report = Report(dataset)
    assigned = assign(copy, dataset, classes, official, report)
    if not assigned["val"] and entry.split_sizes.get("val") is None:
        carve_val(assigned, report, val_signers=entry.val_signers)
    pose = _pose_source(copy)
    tick = progress or (lambda: None)
    arrays = (_keypoint_splits(assigned, pose.layout, drop_invalid, report, tick)
              if pose is not None else None)
    video_source = videos or (copy if any(s.videos for s in copy.splits.values()) else None)
    video_paths = (_join_videos(assigned, video_source, drop_invalid, report)
                   if video_source is not None else None)
    for split, samples in assigned.items():
        report.found[split] = len(samples)
        table = official.get(split)
        report.official[split] = len(table.ids) if table is not None else entry.split_sizes.get(
            split)
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    ids, labels = {}, {}
    for split, samples in assigned.items():
        if not samples:
            continue
        order = _official_order(samples, official.get(split))
        samples = [samples[i] for i in order]
        folder = tmp / split
        folder.mkdir()
        ids[split] = tuple(s.sample_id for s in samples)
        labels[split] = np.array([s.label for s in samples], dtype=np.int64)
        (folder / "ids.txt").write_text("\n".join(ids[split]) + "\n", encoding="utf-8")
        np.save(folder / "labels.npy", labels[split])
        if all(s.signer is not None for s in samples):
            (folder / "signers.txt").write_text("\n".join(str(s.signer) for s in samples) + "\n",
                                                encoding="utf-8")
        if arrays is not None:
            _write_pose(folder, [arrays[split][i] for i in order])
        if video_paths is not None:
            (folder / "videos.txt").write_text(
                "\n".join(str(video_paths[s.sample_id]) for s in samples) + "\n",
                encoding="utf-8")
    meta = _meta(dataset, copy, videos, classes, pose, report, ids, labels)
    (tmp / META).write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n",
                            encoding="utf-8")
    old = out.with_name(f".{out.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)
    return PrepareResult(out, report, meta)


def _classes(dataset: str, official: dict[str, Any], num_classes: int,
             copy: SourceCopy) -> tuple[str, ...]:
    """The registry's class list: the official one where shipped, else the copy's (in its
    order) or numbered placeholders."""
    for table in official.values():
        if table is not None:
            return tuple(table.classes)
    if copy.classes is not None and len(copy.classes) == num_classes:
        return tuple(copy.classes)
    return tuple(f"class_{k}" for k in range(num_classes))


def _pose_source(copy: SourceCopy) -> Any:
    sources = {id(s.pose): s.pose for s in copy.splits.values() if s.pose is not None}
    if not sources:
        return None
    layouts = {(p.layout, tuple(p.frame_size)) for p in sources.values()}
    if len(layouts) > 1:
        raise SlrbenchError(f"{copy.format} copy: keypoints in several layouts or frame sizes "
                            f"{sorted(layouts)}; expected one")
    return next(iter(sources.values()))


def _join_videos(assigned: dict[str, list[Sample]], videos: SourceCopy, drop_invalid: bool,
                 report: Report) -> dict[str, Path]:
    paths: dict[str, Path] = {}
    for found in videos.splits.values():
        if found.videos is not None:
            paths.update(zip(found.ids, found.videos))
    missing = [s.sample_id for samples in assigned.values() for s in samples
               if s.sample_id not in paths]
    if missing and not drop_invalid:
        raise SlrbenchError(f"--videos: no video for {len(missing)} samples: "
                            f"{_examples(missing)}; expected one per sample (--drop-invalid "
                            "drops and counts them)")
    if missing:
        report.dropped["no video"] += len(missing)
        lost = set(missing)
        for split, samples in assigned.items():
            assigned[split] = [s for s in samples if s.sample_id not in lost]
    return paths


def _official_order(samples: list[Sample], table: Any) -> list[int]:
    """Indices of `samples` in official order (registry order), else in the copy's order."""
    if table is None:
        return list(range(len(samples)))
    return sorted(range(len(samples)), key=lambda i: table.row(samples[i].sample_id))


def _write_pose(folder: Path, arrays: list[np.ndarray]) -> None:
    lengths = np.array([len(a) for a in arrays], dtype=np.int64)
    t_max = int(lengths.max(initial=1))
    shape = (len(arrays), t_max, *arrays[0].shape[1:]) if arrays else (0, 1, 1, 3)
    data = np.lib.format.open_memmap(folder / "pose.npy", mode="w+", dtype=np.float32,
                                     shape=shape)
    for i, points in enumerate(arrays):
        data[i, :len(points)] = points
        data[i, len(points):] = 0.0
    data.flush()
    del data
    np.save(folder / "lengths.npy", lengths)


def _meta(dataset: str, copy: SourceCopy, videos: SourceCopy | None, classes: tuple[str, ...],
          pose: Any, report: Report, ids: dict[str, tuple[str, ...]],
          labels: dict[str, np.ndarray]) -> dict[str, Any]:
    def source(found: SourceCopy) -> dict[str, Any]:
        return {"format": found.format, "files": [str(f) for f in found.files[:50]],
                "file_count": len(found.files), "notes": list(found.notes)}

    return {
        "prepared_version": PREPARED_VERSION,
        "dataset": dataset,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "sources": [source(copy)] + ([source(videos)] if videos is not None else []),
        "classes": list(classes),
        "pose": None if pose is None else {
            "layout": pose.layout, "frame_size": list(pose.frame_size), "fps": pose.fps,
            "extractor": dict(pose.extractor)},
        "videos": videos is not None or any(s.videos for s in copy.splits.values()),
        "counts": {split: {"n_found": report.found.get(split, 0),
                           "n_official": report.official.get(split)} for split in SPLITS},
        "dropped": dict(report.dropped),
        "skipped_outside": report.skipped_outside,
        "notes": list(report.notes) + list(copy.notes),
        "content_sha256": content_digest(ids, labels),
    }

