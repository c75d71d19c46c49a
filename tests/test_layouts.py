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
        L.get_layout("openpose_135")  # the TFDS OpenPose variant: not a layout of slrbench


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


# ------------------------------------------------------------------ extractor layouts
MP_LEFT_HAND = {"mediapipe_holistic_576": 501, "mediapipe_holistic_586": 511}  # 33 + face


def _indexed(num_nodes: int) -> np.ndarray:
    """(2, V, 3) keypoints whose x is the point's own index, y its negative, score 1."""
    idx = np.arange(num_nodes, dtype=np.float32)
    return np.stack([idx, -idx, np.ones_like(idx)], axis=-1)[None].repeat(2, axis=0)


def _source_of(coco: np.ndarray) -> list[int | None]:
    """For each COCO point of a converted `_indexed` array: the source index, None if zeroed."""
    return [None if p[2] == 0 else int(p[0]) for p in coco[0]]


@pytest.mark.parametrize("name", ["mediapipe_holistic_576", "mediapipe_holistic_586"])
def test_mediapipe_layout_points_and_mirror(name: str) -> None:
    lay = L.get_layout(name)
    face = 468 if name.endswith("576") else 478
    left = MP_LEFT_HAND[name]
    assert lay.num_nodes == 33 + face + 21 + 21 + 33 and left == 33 + face
    assert lay.names[0] == "pose_nose" and lay.names[15] == "pose_left_wrist"
    assert lay.names[33] == "face_mesh_0" and lay.names[left - 1] == f"face_mesh_{face - 1}"
    assert lay.names[left] == "left_hand_wrist" and lay.names[left + 21] == "right_hand_wrist"
    assert lay.names[left + 41] == "right_hand_pinky_tip"
    assert lay.names[left + 42] == "pose_world_nose"
    assert lay.names[-1] == "pose_world_right_foot_index"
    m = lay.mirror
    for a, b in [(1, 4), (2, 5), (9, 10), (11, 12), (15, 16), (31, 32), (left, left + 21),
                 (left + 20, left + 41), (left + 42 + 11, left + 42 + 12)]:
        assert m[a] == b and m[b] == a
    assert m[0] == 0 and all(m[i] == i for i in range(33, left))  # face mesh: no symmetry table
    edges = set(lay.edges)
    assert {(m[p], m[c]) for p, c in edges} == edges  # the tree is left-right symmetric
    assert (15, left) in edges and (16, left + 21) in edges  # pose wrist -> hand root
    # Pose and hands form one tree (face indices removed), the world pose a tree of its own.
    def skip_face(i: int) -> int:
        return i if i < 33 else i - face

    world = [(p - left - 42, c - left - 42) for p, c in lay.edges if p >= left + 42]
    assert _is_tree(33 + 42, [(skip_face(p), skip_face(c)) for p, c in lay.edges
                              if p < left + 42], root=0)
    assert _is_tree(33, world, root=0) and len(lay.edges) == 32 + 2 + 40 + 32


def test_openpose137_points_and_mirror() -> None:
    lay = L.get_layout("openpose_137")
    assert lay.num_nodes == 137
    assert [lay.names[i] for i in (0, 1, 4, 7, 8, 15, 16, 19, 24)] == [
        "nose", "neck", "right_wrist", "left_wrist", "mid_hip", "right_eye", "left_eye",
        "left_big_toe", "right_heel"]
    assert lay.names[25] == "face_jaw_0" and lay.names[93] == "face_pupil_68"
    assert lay.names[95] == "left_hand_wrist" and lay.names[116] == "right_hand_wrist"
    m = lay.mirror
    for a, b in [(2, 5), (4, 7), (9, 12), (11, 14), (15, 16), (17, 18), (19, 22), (21, 24),
                 (25 + 0, 25 + 16), (25 + 36, 25 + 45), (93, 94), (95, 116), (115, 136)]:
        assert m[a] == b and m[b] == a
    assert all(m[i] == i for i in (0, 1, 8, 25 + 8, 25 + 30, 25 + 51))
    edges = set(lay.edges)
    assert {(m[p], m[c]) for p, c in edges} == edges
    body_and_hands = [(p, c) for p, c in lay.edges]  # the face has no edges
    assert all(not 25 <= p < 95 and not 25 <= c < 95 for p, c in body_and_hands)
    assert _is_tree(25 + 42, [(p if p < 25 else p - 70, c if c < 25 else c - 70)
                              for p, c in body_and_hands], root=0)


@pytest.mark.parametrize("name", ["mediapipe_holistic_576", "mediapipe_holistic_586"])
def test_mediapipe_to_coco_by_hand(name: str) -> None:
    left = MP_LEFT_HAND[name]
    src = _source_of(L.convert(_indexed(L.get_layout(name).num_nodes), name,
                               "coco_wholebody_133"))
    # docs/formats/keypoint-layouts.md#mediapipe-to-coco-wholebody, row by row
    assert src[:17] == [0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28]
    assert src[17:23] == [31, None, 29, 32, None, 30]  # feet: no small toes
    assert src[23:91] == [None] * 68  # the face mesh has no iBUG-68 counterpart
    assert src[91:112] == list(range(left, left + 21))  # LEFT_HAND -> COCO left hand
    assert src[112:133] == list(range(left + 21, left + 42))


def test_openpose_to_coco_by_hand() -> None:
    src = _source_of(L.convert(_indexed(137), "openpose_137", "coco_wholebody_133"))
    assert src[:11] == [0, 16, 15, 18, 17, 5, 2, 6, 3, 7, 4]
    assert src[11:17] == [12, 9, 13, 10, 14, 11]  # hips, knees, ankles: left before right
    assert src[17:23] == [19, 20, 21, 22, 23, 24]
    assert src[23:91] == list(range(25, 93))  # iBUG-68 face, same order
    assert src[91:112] == list(range(95, 116)) and src[112:133] == list(range(116, 137))
    assert not {1, 8, 93, 94} & {s for s in src if s is not None}  # neck, mid-hip, pupils


@pytest.mark.parametrize("name", ["mediapipe_holistic_576", "mediapipe_holistic_586",
                                  "openpose_137"])
def test_extractor_conversion_commutes_with_the_flip(name: str) -> None:
    lay, coco = L.get_layout(name), L.COCO_WHOLEBODY_133
    src = L.COCO_FROM_EXTRACTOR[name]
    for k, s in enumerate(src):
        assert (src[coco.mirror[k]] is None) == (s is None)
        if s is not None:  # flipping then converting = converting then flipping
            assert src[coco.mirror[k]] == lay.mirror[s]


@pytest.mark.parametrize("name", ["mediapipe_holistic_576", "mediapipe_holistic_586"])
def test_mediapipe_unmapped_points_get_score_zero(name: str) -> None:
    pose = np.random.default_rng(1).uniform(1, 2, size=(3, 4, L.get_layout(name).num_nodes, 3))
    coco = L.convert(pose.astype(np.float32), name, "coco_wholebody_133")
    assert coco.shape == (3, 4, 133, 3) and coco.dtype == np.float32
    missing = [18, 21, *range(23, 91)]  # small toes and the 68 face points
    assert not coco[..., missing, :].any()  # coordinates and score 0
    assert (coco[..., [k for k in range(133) if k not in missing], 2] >= 1).all()


def test_openpose_fills_every_coco_point() -> None:
    assert None not in L.COCO_FROM_EXTRACTOR["openpose_137"]


@pytest.mark.parametrize("name", ["mediapipe_holistic_576", "mediapipe_holistic_586",
                                  "openpose_137"])
def test_extractor_layouts_reach_every_method_layout(name: str) -> None:
    pose = _indexed(L.get_layout(name).num_nodes)
    coco = L.convert(pose, name, "coco_wholebody_133")
    for dst in ("samslr_27", "hand10_left", "hand10_right", "hand21_left", "hand21_right",
                "nlaslr_63"):
        assert (name, dst) in L.supported_conversions()
        np.testing.assert_array_equal(L.convert(pose, name, dst),
                                      L.convert(coco, "coco_wholebody_133", dst))
    s27 = _source_of(L.convert(pose, name, "samslr_27"))
    if name.startswith("mediapipe"):  # the SAM-SLR 27 recipe of the docs
        left = MP_LEFT_HAND[name]
        hand = [0, 4, 5, 8, 9, 12, 13, 16, 17, 20]
        assert s27 == [0, 11, 12, 13, 14, 15, 16, *(left + j for j in hand),
                       *(left + 21 + j for j in hand)]
        assert _source_of(L.convert(pose, name, "nlaslr_63"))[42:52] == [None] * 10  # no mouth
    with pytest.raises(SlrbenchError, match="unsupported pair"):
        L.convert(coco, "coco_wholebody_133", name)  # no way back to an extractor's layout
