"""Keypoint layouts: joint names, skeleton edges, left/right mirror permutations and conversions.

Facts and their sources (docs/formats/keypoint-layouts.md, docs/methods/samslr-pipeline.md,
docs/methods/lgf.md):

* ``coco_wholebody_133``: COCO-WholeBody order (body 0–16, feet 17–22, face 23–90 in iBUG-68
  order, left hand 91–111, right hand 112–132). Mirror pairs as in
  docs/formats/keypoint-layouts.md#coco-wholebody-133; the face is mirrored by iBUG-68 symmetry.
* ``samslr_27``: the '27' joint selection of ``jackyjsy/CVPR21Chal-SLR`` @ de6c53a,
  ``SL-GCN/data_gen/sign_gendata.py``; bone pairs of ``graph/sign_27.py`` (written there with a
  +5 offset), flip permutation of ``feeders/feeder.py``.
* ``hand10_*`` / ``hand21_*``: LGF-SLR hand subsets, a slrbench reconstruction
  (docs/methods/lgf.md#reconstruction-decisions).
* ``mediapipe_holistic_576`` / ``_586`` and ``openpose_137``: the extractors' point lists as
  pose-format files store them, and their mapping onto COCO-WholeBody
  (docs/formats/keypoint-layouts.md#mediapipe-to-coco-wholebody and #openpose-137).

"Left"/"right" are COCO's labels. In SAM-SLR arrays the frames were flipped before pose
extraction, so COCO-left is the signer's anatomical right there
(docs/methods/samslr-pipeline.md#pose-extraction).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from slrbench.errors import SlrbenchError

Edge = tuple[int, int]


@dataclass(frozen=True)
class KeypointLayout:
    """A named keypoint set.

    ``edges`` are (parent, child) pairs; for every layout defined here they form a forest whose
    roots keep absolute coordinates in the bone stream (a tree for samslr_27 and the hands).
    ``mirror[i]`` is the node that node ``i`` becomes under a horizontal flip (an involution).
    ``center`` is the joint whose time-mean is subtracted by the skeleton feeder.
    """

    name: str
    names: tuple[str, ...]
    edges: tuple[Edge, ...]
    mirror: tuple[int, ...]
    center: int

    def __post_init__(self) -> None:
        v = len(self.names)
        if sorted(self.mirror) != list(range(v)):
            raise ValueError(f"layout {self.name}: mirror is not a permutation of {v} nodes")
        if any(self.mirror[self.mirror[i]] != i for i in range(v)):
            raise ValueError(f"layout {self.name}: mirror is not an involution")
        children = [c for _, c in self.edges]
        if len(set(children)) != len(children):
            raise ValueError(f"layout {self.name}: a node has two parents")
        for p, c in self.edges:
            if not (0 <= p < v and 0 <= c < v) or p == c:
                raise ValueError(f"layout {self.name}: bad edge ({p}, {c})")
        if not 0 <= self.center < v:
            raise ValueError(f"layout {self.name}: center {self.center} out of range")

    @property
    def num_nodes(self) -> int:
        return len(self.names)


# --------------------------------------------------------------------------------------------
# COCO-WholeBody 133
# --------------------------------------------------------------------------------------------
_BODY_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
_FEET_NAMES = (
    "left_big_toe", "left_small_toe", "left_heel",
    "right_big_toe", "right_small_toe", "right_heel",
)  # fmt: skip
# Hand order shared by COCO-WholeBody, MediaPipe and OpenPose
# (docs/formats/keypoint-layouts.md#mediapipe-holistic).
HAND21_POINT_NAMES = (
    "wrist",
    "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip",
    "index_mcp", "index_pip", "index_dip", "index_tip",
    "middle_mcp", "middle_pip", "middle_dip", "middle_tip",
    "ring_mcp", "ring_pip", "ring_dip", "ring_tip",
    "pinky_mcp", "pinky_pip", "pinky_dip", "pinky_tip",
)  # fmt: skip

LEFT_HAND_BASE = 91
RIGHT_HAND_BASE = 112
FACE_BASE = 23


def _face_names() -> tuple[str, ...]:
    """``face_<part>_<iBUG index>``; parts carry no side (iBUG sides are image sides)."""
    parts = (("jaw", 17), ("brow", 10), ("nose", 9), ("eye", 12), ("lip", 20))
    names = [f"face_{part}_{i}" for i, part in enumerate(p for p, n in parts for _ in range(n))]
    assert len(names) == 68
    return tuple(names)


def _ibug68_mirror() -> list[int]:
    """iBUG-68 left/right symmetry (0-based iBUG indices)."""
    m = list(range(68))
    pairs: list[Edge] = [(i, 16 - i) for i in range(8)]  # jaw 0–16, 8 is the chin
    pairs += [(17 + i, 26 - i) for i in range(5)]  # brows 17–21 <-> 26–22
    pairs += [(31, 35), (32, 34)]  # lower nose, 33 self; bridge 27–30 self
    pairs += [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes
    pairs += [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]  # outer lip, 51/57 self
    pairs += [(60, 64), (61, 63), (65, 67)]  # inner lip, 62/66 self
    for a, b in pairs:
        m[a], m[b] = b, a
    return m


# Standard 20-edge hand tree on local ids (docs/methods/lgf.md#reconstruction-decisions, hand-21).
HAND21_EDGES: tuple[Edge, ...] = (
    (0, 1), (1, 2), (2, 3), (3, 4),
    (0, 5), (5, 6), (6, 7), (7, 8),
    (0, 9), (9, 10), (10, 11), (11, 12),
    (0, 13), (13, 14), (14, 15), (15, 16),
    (0, 17), (17, 18), (18, 19), (19, 20),
)  # fmt: skip


def _coco133() -> KeypointLayout:
    names = (
        _BODY_NAMES
        + _FEET_NAMES
        + _face_names()
        + tuple(f"left_hand_{n}" for n in HAND21_POINT_NAMES)
        + tuple(f"right_hand_{n}" for n in HAND21_POINT_NAMES)
    )
    mirror = list(range(133))
    body_pairs = [(1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)]
    feet_pairs = [(17, 20), (18, 21), (19, 22)]
    hand_pairs = [(LEFT_HAND_BASE + j, RIGHT_HAND_BASE + j) for j in range(21)]
    for a, b in body_pairs + feet_pairs + hand_pairs:
        mirror[a], mirror[b] = b, a
    for i, j in enumerate(_ibug68_mirror()):
        mirror[FACE_BASE + i] = FACE_BASE + j
    # Drawing tree over body, feet and hands, rooted at the nose. COCO's own body skeleton has
    # cycles (shoulder-hip quadrilateral); a tree keeps the bone stream well defined. Face
    # points get no edges (they keep absolute values in a bone stream).
    edges: list[Edge] = [
        (0, 1), (0, 2), (1, 3), (2, 4),  # eyes, ears
        (0, 5), (0, 6), (5, 7), (7, 9), (6, 8), (8, 10),  # arms
        (5, 11), (6, 12), (11, 13), (13, 15), (12, 14), (14, 16),  # legs
        (15, 17), (15, 18), (15, 19), (16, 20), (16, 21), (16, 22),  # feet
        (9, LEFT_HAND_BASE), (10, RIGHT_HAND_BASE),  # wrist -> hand root
    ]  # fmt: skip
    for base in (LEFT_HAND_BASE, RIGHT_HAND_BASE):
        edges += [(base + p, base + c) for p, c in HAND21_EDGES]
    return KeypointLayout("coco_wholebody_133", names, tuple(edges), tuple(mirror), center=0)


COCO_WHOLEBODY_133 = _coco133()

# --------------------------------------------------------------------------------------------
# SAM-SLR 27
# --------------------------------------------------------------------------------------------
#: COCO-WholeBody indices of the 27 SAM-SLR joints (sign_gendata.py, config '27').
SAMSLR27_FROM_COCO: tuple[int, ...] = (
    0, 5, 6, 7, 8, 9, 10,
    91, 95, 96, 99, 100, 103, 104, 107, 108, 111,
    112, 116, 117, 120, 121, 124, 125, 128, 129, 132,
)  # fmt: skip

#: The 26 (parent, child) pairs as written upstream (graph/sign_27.py, gen_bone_data.py: +5).
SAMSLR27_EDGES_UPSTREAM: tuple[Edge, ...] = (
    (5, 6), (5, 7), (6, 8), (8, 10), (7, 9), (9, 11),
    (12, 13), (12, 14), (12, 16), (12, 18), (12, 20),
    (14, 15), (16, 17), (18, 19), (20, 21),
    (22, 23), (22, 24), (22, 26), (22, 28), (22, 30),
    (24, 25), (26, 27), (28, 29), (30, 31),
    (10, 12), (11, 22),
)  # fmt: skip

#: Same pairs on 27-node ids (docs/methods/samslr-pipeline.md#bones-and-graph).
SAMSLR27_EDGES: tuple[Edge, ...] = (
    (0, 1), (0, 2), (1, 3), (3, 5), (2, 4), (4, 6),  # body
    (7, 8), (7, 9), (7, 11), (7, 13), (7, 15), (9, 10), (11, 12), (13, 14), (15, 16),  # L hand
    (17, 18), (17, 19), (17, 21), (17, 23), (17, 25), (19, 20), (21, 22), (23, 24), (25, 26),
    (5, 7), (6, 17),  # wrist -> hand root
)  # fmt: skip

#: feeders/feeder.py flip_index.
SAMSLR27_MIRROR: tuple[int, ...] = (
    (0, 2, 1, 4, 3, 6, 5) + tuple(range(17, 27)) + tuple(range(7, 17))
)

SAMSLR_27 = KeypointLayout(
    "samslr_27",
    tuple(COCO_WHOLEBODY_133.names[i] for i in SAMSLR27_FROM_COCO),
    SAMSLR27_EDGES,
    SAMSLR27_MIRROR,
    center=0,
)

# --------------------------------------------------------------------------------------------
# Hands (LGF-SLR reconstruction, docs/methods/lgf.md#reconstruction-decisions)
# --------------------------------------------------------------------------------------------
#: Hand-10 points as offsets into a 21-point hand: root, thumb tip, then MCP and tip of the
#: index, middle, ring and pinky fingers.
HAND10_FROM_HAND21: tuple[int, ...] = (0, 4, 5, 8, 9, 12, 13, 16, 17, 20)
HAND10_EDGES: tuple[Edge, ...] = (
    (0, 1), (0, 2), (0, 4), (0, 6), (0, 8), (2, 3), (4, 5), (6, 7), (8, 9),
)  # fmt: skip
HAND10_LEFT_FROM_COCO = tuple(LEFT_HAND_BASE + j for j in HAND10_FROM_HAND21)
HAND10_RIGHT_FROM_COCO = tuple(RIGHT_HAND_BASE + j for j in HAND10_FROM_HAND21)
HAND21_LEFT_FROM_COCO = tuple(range(LEFT_HAND_BASE, LEFT_HAND_BASE + 21))
HAND21_RIGHT_FROM_COCO = tuple(range(RIGHT_HAND_BASE, RIGHT_HAND_BASE + 21))


def _hand(name: str, coco_ids: tuple[int, ...], edges: tuple[Edge, ...]) -> KeypointLayout:
    # Mirror is the identity: a flip cannot turn a single-hand array into the other hand.
    v = len(coco_ids)
    names = tuple(COCO_WHOLEBODY_133.names[i] for i in coco_ids)
    return KeypointLayout(name, names, edges, tuple(range(v)), center=0)


HAND10_LEFT = _hand("hand10_left", HAND10_LEFT_FROM_COCO, HAND10_EDGES)
HAND10_RIGHT = _hand("hand10_right", HAND10_RIGHT_FROM_COCO, HAND10_EDGES)
HAND21_LEFT = _hand("hand21_left", HAND21_LEFT_FROM_COCO, HAND21_EDGES)
HAND21_RIGHT = _hand("hand21_right", HAND21_RIGHT_FROM_COCO, HAND21_EDGES)

# --------------------------------------------------------------------------------------------
# NLA-SLR 63 (docs/formats/keypoint-layouts.md#nla-slr-63)
# --------------------------------------------------------------------------------------------
#: NLA-SLR's keypoint channels in its part order (hand, mouth_half, pose): both hands 91-132,
#: every second mouth point 71-89, and body points 0-10.
NLASLR63_FROM_COCO: tuple[int, ...] = (
    tuple(range(LEFT_HAND_BASE, RIGHT_HAND_BASE + 21)) + tuple(range(71, 90, 2))
    + tuple(range(11))
)


def _subset(name: str, coco_ids: tuple[int, ...], center: int) -> KeypointLayout:
    """A subset of COCO-WholeBody closed under the mirror, without edges (heatmap channels)."""
    position = {c: i for i, c in enumerate(coco_ids)}
    mirror = tuple(position[COCO_WHOLEBODY_133.mirror[c]] for c in coco_ids)
    names = tuple(COCO_WHOLEBODY_133.names[i] for i in coco_ids)
    return KeypointLayout(name, names, (), mirror, center=position[center])


NLASLR_63 = _subset("nlaslr_63", NLASLR63_FROM_COCO, center=0)

# --------------------------------------------------------------------------------------------
# Extractor layouts: MediaPipe Holistic as pose-format stores it, and OpenPose 137
# (docs/formats/keypoint-layouts.md#mediapipe-holistic and #openpose-137)
# --------------------------------------------------------------------------------------------
#: MediaPipe's 33 pose landmarks in their index order; sides are the signer's anatomical sides.
MEDIAPIPE_POSE_NAMES = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer",
    "right_eye_inner", "right_eye", "right_eye_outer", "left_ear", "right_ear",
    "mouth_left", "mouth_right", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_pinky", "right_pinky", "left_index", "right_index",
    "left_thumb", "right_thumb", "left_hip", "right_hip", "left_knee", "right_knee",
    "left_ankle", "right_ankle", "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)  # fmt: skip
# A drawing tree over the 33 pose points rooted at the nose (MediaPipe's own connections have
# cycles, e.g. the torso); every edge has its mirror image in the set.
_MEDIAPIPE_POSE_EDGES: tuple[Edge, ...] = (
    (0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (0, 9), (0, 10),
    (0, 11), (0, 12), (11, 13), (13, 15), (12, 14), (14, 16),
    (15, 17), (15, 19), (15, 21), (16, 18), (16, 20), (16, 22),
    (11, 23), (12, 24), (23, 25), (25, 27), (24, 26), (26, 28),
    (27, 29), (27, 31), (28, 30), (28, 32),
)  # fmt: skip
MEDIAPIPE_FACE_POINTS = 468
MEDIAPIPE_FACE_POINTS_REFINED = 478  # + 10 iris landmarks (refine_face_landmarks)

#: BODY_25 in its index order, sides anatomical.
OPENPOSE_BODY25_NAMES = (
    "nose", "neck", "right_shoulder", "right_elbow", "right_wrist",
    "left_shoulder", "left_elbow", "left_wrist", "mid_hip", "right_hip", "right_knee",
    "right_ankle", "left_hip", "left_knee", "left_ankle", "right_eye", "left_eye",
    "right_ear", "left_ear", "left_big_toe", "left_small_toe", "left_heel",
    "right_big_toe", "right_small_toe", "right_heel",
)  # fmt: skip
# OpenPose's own BODY_25 limbs form a tree rooted at the neck; re-rooted at the nose here.
_BODY25_EDGES: tuple[Edge, ...] = (
    (0, 1), (1, 2), (2, 3), (3, 4), (1, 5), (5, 6), (6, 7), (1, 8),
    (8, 9), (9, 10), (10, 11), (8, 12), (12, 13), (13, 14),
    (0, 15), (15, 17), (0, 16), (16, 18),
    (14, 19), (19, 20), (14, 21), (11, 22), (22, 23), (11, 24),
)  # fmt: skip
OPENPOSE_FACE_BASE = 25  # 70 face points: iBUG-68 order, then the two pupils (68, 69)
OPENPOSE_LEFT_HAND_BASE = 95
OPENPOSE_RIGHT_HAND_BASE = 116


def _swap_sides(name: str) -> str:
    return name.replace("left", "\0").replace("right", "left").replace("\0", "right")


def _mirror_by_name(names: tuple[str, ...]) -> list[int]:
    """Each point's flip partner: the point whose name has left and right swapped (itself when
    the name carries no side)."""
    index = {n: i for i, n in enumerate(names)}
    return [index.get(_swap_sides(n), i) for i, n in enumerate(names)]


def _hand_names(side: str) -> tuple[str, ...]:
    return tuple(f"{side}_hand_{n}" for n in HAND21_POINT_NAMES)


def _mediapipe_holistic(face_points: int) -> KeypointLayout:
    """POSE 33, FACE, LEFT_HAND 21, RIGHT_HAND 21, POSE_WORLD 33, pose-format's component order.

    The face mesh's points carry their mesh index (``face_mesh_<i>``) and mirror onto themselves:
    slrbench has no face-mesh symmetry table, and nothing flips in this layout (methods flip
    after converting to their own layouts, where no mesh point survives).
    """
    left = len(MEDIAPIPE_POSE_NAMES) + face_points
    right, world = left + 21, left + 42
    names = (
        tuple(f"pose_{n}" for n in MEDIAPIPE_POSE_NAMES)
        + tuple(f"face_mesh_{i}" for i in range(face_points))
        + _hand_names("left") + _hand_names("right")
        + tuple(f"pose_world_{n}" for n in MEDIAPIPE_POSE_NAMES)
    )
    edges = list(_MEDIAPIPE_POSE_EDGES) + [(15, left), (16, right)]  # pose wrist -> hand root
    edges += [(base + p, base + c) for base in (left, right) for p, c in HAND21_EDGES]
    edges += [(world + p, world + c) for p, c in _MEDIAPIPE_POSE_EDGES]  # a tree of its own
    return KeypointLayout(f"mediapipe_holistic_{len(names)}", names, tuple(edges),
                          tuple(_mirror_by_name(names)), center=0)


def _openpose137() -> KeypointLayout:
    face_names = _face_names() + ("face_pupil_68", "face_pupil_69")
    names = OPENPOSE_BODY25_NAMES + face_names + _hand_names("left") + _hand_names("right")
    mirror = _mirror_by_name(names)
    # Face points carry no side in their names: iBUG-68 symmetry, and the pupils swap.
    face_mirror = [*_ibug68_mirror(), 69, 68]
    for i, j in enumerate(face_mirror):
        mirror[OPENPOSE_FACE_BASE + i] = OPENPOSE_FACE_BASE + j
    edges = list(_BODY25_EDGES)
    edges += [(7, OPENPOSE_LEFT_HAND_BASE), (4, OPENPOSE_RIGHT_HAND_BASE)]
    edges += [(base + p, base + c) for base in (OPENPOSE_LEFT_HAND_BASE, OPENPOSE_RIGHT_HAND_BASE)
              for p, c in HAND21_EDGES]
    return KeypointLayout("openpose_137", names, tuple(edges), tuple(mirror), center=0)


MEDIAPIPE_HOLISTIC_576 = _mediapipe_holistic(MEDIAPIPE_FACE_POINTS)
MEDIAPIPE_HOLISTIC_586 = _mediapipe_holistic(MEDIAPIPE_FACE_POINTS_REFINED)
OPENPOSE_137 = _openpose137()

# COCO-WholeBody from the extractors: for each of the 133 points its source index, or None where
# the extractor has no counterpart (coordinates 0, score 0). Table:
# docs/formats/keypoint-layouts.md#mediapipe-to-coco-wholebody and #openpose-137.
_COCO_BODY_FEET_FROM_MEDIAPIPE: tuple[int | None, ...] = (
    0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16,  # nose, eyes, ears, shoulders, elbows, wrists
    23, 24, 25, 26, 27, 28,  # hips, knees, ankles
    31, None, 29, 32, None, 30,  # big toe ~ foot index (approximate), no small toe, heel
)  # fmt: skip
_COCO_BODY_FEET_FROM_OPENPOSE: tuple[int | None, ...] = (
    0, 16, 15, 18, 17, 5, 2, 6, 3, 7, 4,
    12, 9, 13, 10, 14, 11,
    19, 20, 21, 22, 23, 24,
)  # fmt: skip


def _coco_from_mediapipe(face_points: int) -> tuple[int | None, ...]:
    left = len(MEDIAPIPE_POSE_NAMES) + face_points  # LEFT_HAND follows the pose and the face
    face: tuple[int | None, ...] = (None,) * 68  # the mesh has no one-to-one iBUG-68 points
    return (_COCO_BODY_FEET_FROM_MEDIAPIPE + face + tuple(range(left, left + 21))
            + tuple(range(left + 21, left + 42)))


def _coco_from_openpose() -> tuple[int | None, ...]:
    # OpenPose's face is iBUG-68 plus two pupils, COCO-WholeBody's the same 68 points in the
    # same order; the pupils, the neck and the mid-hip have no counterpart.
    return (_COCO_BODY_FEET_FROM_OPENPOSE
            + tuple(range(OPENPOSE_FACE_BASE, OPENPOSE_FACE_BASE + 68))
            + tuple(range(OPENPOSE_LEFT_HAND_BASE, OPENPOSE_LEFT_HAND_BASE + 21))
            + tuple(range(OPENPOSE_RIGHT_HAND_BASE, OPENPOSE_RIGHT_HAND_BASE + 21)))


COCO_FROM_EXTRACTOR: dict[str, tuple[int | None, ...]] = {
    MEDIAPIPE_HOLISTIC_576.name: _coco_from_mediapipe(MEDIAPIPE_FACE_POINTS),
    MEDIAPIPE_HOLISTIC_586.name: _coco_from_mediapipe(MEDIAPIPE_FACE_POINTS_REFINED),
    OPENPOSE_137.name: _coco_from_openpose(),
}

LAYOUTS: dict[str, KeypointLayout] = {
    lay.name: lay
    for lay in (COCO_WHOLEBODY_133, SAMSLR_27, HAND10_LEFT, HAND10_RIGHT, HAND21_LEFT, HAND21_RIGHT,
                NLASLR_63, MEDIAPIPE_HOLISTIC_576, MEDIAPIPE_HOLISTIC_586, OPENPOSE_137)
}

# Subset conversions: (src, dst) -> indices into src, in dst order.
_SELECT: dict[tuple[str, str], tuple[int, ...]] = {
    ("coco_wholebody_133", "samslr_27"): SAMSLR27_FROM_COCO,
    ("coco_wholebody_133", "hand10_left"): HAND10_LEFT_FROM_COCO,
    ("coco_wholebody_133", "hand10_right"): HAND10_RIGHT_FROM_COCO,
    ("coco_wholebody_133", "hand21_left"): HAND21_LEFT_FROM_COCO,
    ("coco_wholebody_133", "hand21_right"): HAND21_RIGHT_FROM_COCO,
    ("coco_wholebody_133", "nlaslr_63"): NLASLR63_FROM_COCO,
    ("samslr_27", "hand10_left"): tuple(range(7, 17)),
    ("samslr_27", "hand10_right"): tuple(range(17, 27)),
    ("hand21_left", "hand10_left"): HAND10_FROM_HAND21,
    ("hand21_right", "hand10_right"): HAND10_FROM_HAND21,
}
# Scatter conversions (dst has more points): (src, dst) -> dst index of each src point.
_SCATTER: dict[tuple[str, str], tuple[int, ...]] = {
    ("samslr_27", "coco_wholebody_133"): SAMSLR27_FROM_COCO,
}
# Gather conversions with gaps: (src, dst) -> for each dst point its src index, or None for a
# point the source lacks (coordinates 0, score 0). Every extractor layout converts to
# COCO-WholeBody and, through it, to every layout COCO-WholeBody converts to by selection.
def _gather_conversions() -> dict[tuple[str, str], tuple[int | None, ...]]:
    gather = {}
    for src, coco_index in COCO_FROM_EXTRACTOR.items():
        gather[(src, COCO_WHOLEBODY_133.name)] = coco_index
        for (via, dst), picked in _SELECT.items():
            if via == COCO_WHOLEBODY_133.name:
                gather[(src, dst)] = tuple(coco_index[i] for i in picked)
    return gather


_GATHER = _gather_conversions()


def get_layout(name: str | KeypointLayout) -> KeypointLayout:
    """The layout called ``name`` (a layout object is passed through)."""
    if isinstance(name, KeypointLayout):
        return name
    try:
        return LAYOUTS[name]
    except (KeyError, TypeError):
        raise SlrbenchError(
            f"layout: unknown layout '{name}'; expected one of {', '.join(LAYOUTS)}"
        ) from None


def supported_conversions() -> tuple[tuple[str, str], ...]:
    """All (src, dst) pairs `convert` accepts besides src == dst."""
    return tuple(_SELECT) + tuple(_SCATTER) + tuple(_GATHER)


def convert(pose: np.ndarray, src: str, dst: str) -> np.ndarray:
    """Convert keypoints (..., V_src, C) from layout ``src`` to ``dst`` -> (..., V_dst, C).

    Subsets are pure index selections. ``samslr_27 -> coco_wholebody_133`` scatters the 27
    points into a zero array, so the 106 missing points get coordinates 0 and score 0 (the
    whole-body convention for "not detected",
    docs/formats/keypoint-layouts.md#mediapipe-to-coco-wholebody). The extractor layouts
    (``mediapipe_holistic_576``/``_586``, ``openpose_137``) gather their counterpart of each
    COCO-WholeBody point, with the same zeros where they have none, and reach the methods'
    subsets through COCO-WholeBody. ``src == dst`` returns a copy.
    """
    src_l, dst_l = get_layout(src), get_layout(dst)
    pose = np.asarray(pose)
    if pose.ndim < 2 or pose.shape[-2] != src_l.num_nodes:
        raise SlrbenchError(
            f"pose: shape {pose.shape} does not match layout '{src_l.name}'; "
            f"expected (..., {src_l.num_nodes}, C)"
        )
    key = (src_l.name, dst_l.name)
    if src_l.name == dst_l.name:
        return pose.copy()
    if key in _SELECT:
        return pose[..., list(_SELECT[key]), :].copy()
    if key in _SCATTER:
        out = np.zeros(pose.shape[:-2] + (dst_l.num_nodes, pose.shape[-1]), dtype=pose.dtype)
        out[..., list(_SCATTER[key]), :] = pose
        return out
    if key in _GATHER:
        index = _GATHER[key]
        out = pose[..., [0 if i is None else i for i in index], :]  # a copy (fancy indexing)
        out[..., [k for k, i in enumerate(index) if i is None], :] = 0
        return out
    pairs = ", ".join(f"{a}->{b}" for a, b in supported_conversions())
    raise SlrbenchError(
        f"layout conversion: unsupported pair '{src_l.name}->{dst_l.name}'; expected one of "
        f"{pairs} (or src == dst)"
    )
