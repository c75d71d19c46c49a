"""The integrity marks every table shows beside a number (docs/evaluation.md#marks-in-tables).

They are derived from record fields only, so the terminal table, the Markdown report and the
fusion section can never disagree about which number is clean.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

FLAG_NOTES = {
    "†": "checkpoint or fusion weights selected on the reported split",
    "‡": "reported split possibly val + test merged",
    "*": "extra training data or external pre-training",
    "◊": "slrbench reconstruction (no upstream code)",
    "?": "imported: which split selected the checkpoint is not known (no --selection-split)",
    "⊙": "fusion cross-fitted on the reported split (each fold scored with weights fitted on "
         "the other folds; folds by signer or by sample, see tuned_on)",
    "↑": "upper bound: reads at test time an input the method's claim does without (e.g. the "
         "real wrist IMU of self-learning fusion)",
}
UPPER_BOUND = "↑"


# Where a published number was read (the start of `PublishedResult.source`).
SOURCE_NOTES = {
    "[R]": "read in the method's own repository (README, result image, code, file name)",
    "[A]": "read on an aggregator or abstract page",
    "[3P]": "transcribed by a third party (another repository or paper)",
    "[M]": "from memory and unverified",
    "[V]": "recomputed by slrbench from released per-sample outputs and real labels",
}


def legend(flags: str, sources: Iterable[str] = ()) -> list[str]:
    """One line per mark and source marker that occurs, in a fixed order (under every table)."""
    lines = [f"{flag} {note}" for flag, note in FLAG_NOTES.items() if flag in flags]
    used = {source.split(" ")[0] for source in sources}
    return lines + [f"{marker} {note}" for marker, note in SOURCE_NOTES.items()
                    if marker in used]


def record_flags(meta: dict[str, Any], split: str) -> str:
    """The marks that apply to one record when it is reported on ``split``."""
    flags = ""
    if meta.get("test_tuned") or meta.get("selection_split") == split:
        flags += "†"
    elif meta.get("selection_split") == "unknown":
        flags += "?"
    if meta.get("val_test_merged"):
        flags += "‡"
    protocol = meta.get("test_protocol") or {}
    if protocol.get("extra_data") or protocol.get("external_pretraining"):
        flags += "*"
    if meta.get("reconstruction"):
        flags += "◊"
    fusion = meta.get("fusion") or {}
    if str(fusion.get("tuned_on") or "").startswith("test-crossfit") and split == "test":
        flags += "⊙"
    # An upper-bound stream, or a fusion with one among its inputs (the inputs' common
    # test_protocol names them).
    upper = set(protocol.get("upper_bound_streams") or ())
    streams = {meta.get("stream"), *(i.get("stream") for i in fusion.get("inputs") or ())}
    if upper & streams:
        flags += UPPER_BOUND
    return flags


def stream_label(stream: str, upper_bounds: Iterable[str]) -> str:
    """A stream's name as tables of methods show it: upper bounds carry their mark."""
    return f"{stream} {UPPER_BOUND}" if stream in set(upper_bounds) else stream


def record_stream_label(meta: dict[str, Any]) -> str:
    """A record's stream as tables without a flags column show it: an upper bound keeps ↑."""
    upper = UPPER_BOUND in record_flags(meta, str(meta.get("split")))
    return stream_label(str(meta.get("stream")), [str(meta.get("stream"))] if upper else [])
