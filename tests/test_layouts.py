"""Keypoint layouts: documented lists, mirror permutations, conversions."""

from __future__ import annotations

import numpy as np
import pytest

from slrbench.datasets import layouts as L
from slrbench.errors import SlrbenchError

SAMSLR27_COCO = [0, 5, 6, 7, 8, 9, 10, 91, 95, 96, 99, 100, 103, 104, 107, 108, 111,
                 112, 116, 117, 120, 121, 124, 125, 128, 129, 132]  # fmt: skip
EDGES_27 = [(0, 1), (0, 2), (1, 3), (3, 5), (2, 4), (4, 6),
            (7, 8), (7, 9), (7, 11), (7, 13), (7, 15), (9, 10), (11, 12), (13, 14), (15, 16),
            (17, 18), (17, 19), (17, 21), (17, 23), (17, 25), (19, 20), (21, 22), (23, 24),
            (25, 26), (5, 7), (6, 17)]  # fmt: skip
EDGES_27_PLUS5 = [(5, 6), (5, 7), (6, 8), (8, 10), (7, 9), (9, 11), (12, 13), (12, 14),
                  (12, 16), (12, 18), (12, 20), (14, 15), (16, 17), (18, 19), (20, 21),
                  (22, 23), (22, 24), (22, 26), (22, 28), (22, 30), (24, 25), (26, 27),
                  (28, 29), (30, 31), (10, 12), (11, 22)]  # fmt: skip


def _is_tree(num_nodes: int, edges, root: int) -> bool:
    children: dict[int, list[int]] = {}
    for p, c in edges:
        children.setdefault(p, []).append(c)
    seen, stack = {root}, [root]
    while stack:
        for c in children.get(stack.pop(), []):
            if c in seen:
                return False
            seen.add(c)
            stack.append(c)
    return len(seen) == num_nodes and len(edges) == num_nodes - 1


def test_samslr27_lists() -> None:
    lay = L.get_layout("samslr_27")
    assert list(L.SAMSLR27_FROM_COCO) == SAMSLR27_COCO
    assert lay.num_nodes == 27 and lay.center == 0 and lay.names[0] == "nose"
    assert list(lay.edges) == EDGES_27
    assert list(L.SAMSLR27_EDGES_UPSTREAM) == EDGES_27_PLUS5
    assert [(p - 5, c - 5) for p, c in EDGES_27_PLUS5] == EDGES_27
    assert _is_tree(27, lay.edges, root=0)
    assert list(lay.mirror) == [0, 2, 1, 4, 3, 6, 5, *range(17, 27), *range(7, 17)]


@pytest.mark.parametrize("name", list(L.LAYOUTS))
def test_mirror_is_involution(name: str) -> None:
    m = np.array(L.get_layout(name).mirror)
    assert sorted(m) == list(range(len(m)))
    np.testing.assert_array_equal(m[m], np.arange(len(m)))


def test_samslr27_mirror_swaps_hands_and_matches_coco() -> None:
    lay, coco = L.SAMSLR_27, L.COCO_WHOLEBODY_133
    m = lay.mirror
    assert [m[i] for i in range(7, 17)] == list(range(17, 27))
    for i, c in enumerate(L.SAMSLR27_FROM_COCO):  # flip commutes with joint selection
        assert coco.mirror[c] == L.SAMSLR27_FROM_COCO[m[i]]
        assert lay.names[i] == coco.names[c]
    # Edges map onto edges under the flip.
    edges = set(lay.edges)
    assert {(m[p], m[c]) for p, c in edges} == edges


def test_coco133_mirror_pairs() -> None:
    m = L.COCO_WHOLEBODY_133.mirror
    assert L.COCO_WHOLEBODY_133.num_nodes == 133
    for a, b in [(1, 2), (5, 6), (15, 16), (17, 20), (19, 22), (91, 112), (111, 132)]:
        assert m[a] == b and m[b] == a
    assert m[0] == 0
    f = 23  # face = 23 + iBUG index
    assert m[f + 0] == f + 16 and m[f + 8] == f + 8  # jaw, chin
    assert m[f + 17] == f + 26 and m[f + 21] == f + 22  # brows
    assert all(m[f + i] == f + i for i in (27, 28, 29, 30, 33, 51, 57, 62, 66))
    assert m[f + 36] == f + 45 and m[f + 40] == f + 47 and m[f + 41] == f + 46  # eyes
    assert m[f + 48] == f + 54 and m[f + 55] == f + 59 and m[f + 65] == f + 67  # lips
    coco = L.COCO_WHOLEBODY_133
    edges = set(coco.edges)
    assert {(m[p], m[c]) for p, c in edges} == edges
    assert (9, 91) in edges and (10, 112) in edges


def test_hand_layouts() -> None:
    h10 = [(0, 1), (0, 2), (0, 4), (0, 6), (0, 8), (2, 3), (4, 5), (6, 7), (8, 9)]
    for side in ("left", "right"):
        lay10, lay21 = L.get_layout(f"hand10_{side}"), L.get_layout(f"hand21_{side}")
        assert list(lay10.edges) == h10 and lay10.num_nodes == 10
        assert lay21.num_nodes == 21 and len(lay21.edges) == 20
        assert _is_tree(10, lay10.edges, 0) and _is_tree(21, lay21.edges, 0)
        assert lay10.mirror == tuple(range(10)) and lay21.mirror == tuple(range(21))
        assert lay10.center == 0 and lay21.center == 0
        assert lay21.names[0] == f"{side}_hand_wrist"
    assert list(L.HAND10_LEFT_FROM_COCO) == [91, 95, 96, 99, 100, 103, 104, 107, 108, 111]
    assert list(L.HAND10_RIGHT_FROM_COCO) == [112, 116, 117, 120, 121, 124, 125, 128, 129, 132]


def test_get_layout_unknown() -> None:
    with pytest.raises(SlrbenchError, match="samslr_27"):
        L.get_layout("openpose_137")


def test_convert_select_and_round_trip() -> None:
    rng = np.random.default_rng(0)
    coco = rng.normal(size=(2, 5, 133, 3)).astype(np.float32)
    s27 = L.convert(coco, "coco_wholebody_133", "samslr_27")
    assert s27.shape == (2, 5, 27, 3)
    np.testing.assert_array_equal(s27, coco[..., SAMSLR27_COCO, :])
    back = L.convert(s27, "samslr_27", "coco_wholebody_133")
    assert back.shape == coco.shape
    np.testing.assert_array_equal(back[..., SAMSLR27_COCO, :], s27)
    missing = np.setdiff1d(np.arange(133), SAMSLR27_COCO)
    assert not back[..., missing, :].any()  # zero-filled, score 0
    np.testing.assert_array_equal(L.convert(back, "coco_wholebody_133", "samslr_27"), s27)
    # Hands agree whichever route they take.
    for side in ("left", "right"):
        via27 = L.convert(s27, "samslr_27", f"hand10_{side}")
        direct = L.convert(coco, "coco_wholebody_133", f"hand10_{side}")
        via21 = L.convert(
            L.convert(coco, "coco_wholebody_133", f"hand21_{side}"),
            f"hand21_{side}",
            f"hand10_{side}",
        )
        np.testing.assert_array_equal(via27, direct)
        np.testing.assert_array_equal(via21, direct)
    np.testing.assert_array_equal(
        L.convert(coco, "coco_wholebody_133", "hand21_right"), coco[..., 112:133, :]
    )


def test_convert_errors() -> None:
    with pytest.raises(SlrbenchError, match="unsupported pair"):
        L.convert(np.zeros((4, 10, 3)), "hand10_left", "samslr_27")
    with pytest.raises(SlrbenchError, match="expected"):
        L.convert(np.zeros((4, 26, 3)), "samslr_27", "hand10_left")


def test_nlaslr63_is_hand_mouth_pose_and_mirrors_like_coco() -> None:
    from slrbench.datasets.layouts import NLASLR63_FROM_COCO, NLASLR_63

    assert NLASLR63_FROM_COCO[:42] == tuple(range(91, 133))
    assert NLASLR63_FROM_COCO[42:52] == (71, 73, 75, 77, 79, 81, 83, 85, 87, 89)
    assert NLASLR63_FROM_COCO[52:] == tuple(range(11))
    coco = L.get_layout("coco_wholebody_133")
    for i, c in enumerate(NLASLR63_FROM_COCO):  # the mirror is COCO's, restricted
        assert NLASLR63_FROM_COCO[NLASLR_63.mirror[i]] == coco.mirror[c]
    pose = np.random.default_rng(0).normal(size=(2, 133, 3))
    np.testing.assert_array_equal(L.convert(pose, "coco_wholebody_133", "nlaslr_63"),
                                  pose[:, list(NLASLR63_FROM_COCO)])
