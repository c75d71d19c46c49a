"""Minimal-pair accuracy (slrbench.report.minimal_pairs) on hand-built scores."""

from __future__ import annotations

import numpy as np
import pytest

from slrbench.errors import SlrbenchError
from slrbench.report.minimal_pairs import (
    minimal_pair_accuracy,
    minimal_pair_table,
    pair_kinds,
    record_minimal_pairs,
)
from slrbench.store.records import RunRecord

PAIRS = [(0, 1, "handshape"), (1, 2, "handshape"), (0, 3, "location")]


def _scores() -> tuple[np.ndarray, np.ndarray]:
    # K = 5. Rows: true class, then what the row does.
    scores = np.array(
        [
            [5, 4, 0, 0, 0],  # 0: right, beats partner 1
            [0, 3, 4, 0, 0],  # 1: predicts partner 2; beats partner 0, loses to 2
            [0, 0, 1, 0, 2],  # 2: predicts 4 (not a partner); beats partner 1
            [1, 1, 0, 0, 0],  # 0: tie with partner 1 -> counts against (top-1 and pairwise)
            [0, 0, 0, 0, 9],  # 4: in no pair, ignored
        ],
        dtype=np.float32,
    )
    return scores, np.array([0, 1, 2, 0, 4])


def test_handshape_pairs_by_hand() -> None:
    scores, labels = _scores()
    r = minimal_pair_accuracy(scores, labels, PAIRS, "handshape")
    assert (r.pairs, r.classes, r.samples) == (2, 3, 4)
    assert r.top1 == pytest.approx(1 / 4)  # only row 0
    # items: row0 (0 vs 1) win; row1 (1 vs 0) win, (1 vs 2) loss; row2 (2 vs 1) win; row3 tie
    assert r.comparisons == 5 and r.pairwise == pytest.approx(3 / 5)
    assert r.partner_confusion == pytest.approx(1 / 4)  # row 1 -> 2 (row 3's argmax is itself)


def test_table_and_record() -> None:
    scores, labels = _scores()
    table = minimal_pair_table(scores, labels, PAIRS)
    assert list(table) == ["handshape", "location"] == list(pair_kinds(PAIRS))
    loc = table["location"]
    assert (loc.samples, loc.comparisons) == (2, 2)  # rows 0 and 3 (class 3 never occurs)
    assert loc.pairwise == pytest.approx(1.0) and loc.top1 == pytest.approx(0.5)
    ids = np.array([f"s{i}" for i in range(5)])
    record = RunRecord(meta={"run_id": "r", "score_kind": "logits"}, sample_ids=ids,
                       labels=labels, scores=scores)
    assert record_minimal_pairs(record, PAIRS) == table


def test_errors() -> None:
    scores, labels = _scores()
    with pytest.raises(SlrbenchError, match="no pair of kind 'movement'"):
        minimal_pair_accuracy(scores, labels, PAIRS, "movement")
    with pytest.raises(SlrbenchError, match="two distinct classes"):
        minimal_pair_accuracy(scores, labels, [(0, 7, "handshape")], "handshape")
    with pytest.raises(SlrbenchError, match="no sample"):
        minimal_pair_accuracy(scores[[4]], labels[[4]], PAIRS, "handshape")


def test_report_rows_and_markdown() -> None:
    from slrbench.report.minimal_pairs import minimal_pairs_markdown, minimal_pairs_rows

    scores, labels = _scores()
    ids = np.array([f"s{i}" for i in range(5)])
    record = RunRecord(meta={"run_id": "r", "score_kind": "logits", "method": "lgf",
                             "stream": "rhand_j", "seed": 0},
                       sample_ids=ids, labels=labels, scores=scores)
    (row,) = minimal_pairs_rows([record], PAIRS, num_classes=5)
    assert minimal_pairs_rows([record], PAIRS, num_classes=20) == []  # another class set
    assert row["handshape_pairwise"] == pytest.approx(3 / 5)
    assert row["handshape_partner_confusion"] == pytest.approx(1 / 4)
    assert row["location_pairwise"] == pytest.approx(1.0) and row["location_samples"] == 2
    lines = minimal_pairs_markdown([row], PAIRS)
    assert "2 handshape, 1 location pairs" in "\n".join(lines)
    assert lines[-1] == "| lgf | rhand_j | 0 | 0.600 | 0.250 | 1.000 | 0.000 |"
