"""COCO-WholeBody 133 index layout (docs/formats/keypoint-layouts.md#coco-wholebody-133) and the
subsets SynthSign uses."""

from __future__ import annotations

import numpy as np

from slrbench.datasets.layouts import COCO_WHOLEBODY_133, SAMSLR27_FROM_COCO

LAYOUT = "coco_wholebody_133"
N_KEYPOINTS = 133

NOSE, L_EYE, R_EYE, L_EAR, R_EAR = 0, 1, 2, 3, 4
L_SHOULDER, R_SHOULDER, L_ELBOW, R_ELBOW, L_WRIST, R_WRIST = 5, 6, 7, 8, 9, 10
L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANKLE, R_ANKLE = 11, 12, 13, 14, 15, 16
L_BIG_TOE, L_SMALL_TOE, L_HEEL, R_BIG_TOE, R_SMALL_TOE, R_HEEL = 17, 18, 19, 20, 21, 22
FACE = 23  # 68 iBUG points: 23..90
LEFT_HAND = 91  # 21 points: 91..111
RIGHT_HAND = 112  # 21 points: 112..132

UPPER_BODY = np.arange(0, 11)
LOWER_BODY = np.arange(11, 23)
FACE_IDX = np.arange(FACE, FACE + 68)
LEFT_HAND_IDX = np.arange(LEFT_HAND, LEFT_HAND + 21)
RIGHT_HAND_IDX = np.arange(RIGHT_HAND, RIGHT_HAND + 21)

# SAM-SLR's 27 joints, as COCO-WholeBody indices (defined once in slrbench.datasets.layouts).
SAMSLR_27 = np.array(SAMSLR27_FROM_COCO)

# Bones used for drawing skeletons.
BODY_BONES = [(5, 6), (5, 7), (7, 9), (6, 8), (8, 10), (5, 11), (6, 12), (11, 12), (11, 13),
              (13, 15), (12, 14), (14, 16), (0, 1), (0, 2), (1, 3), (2, 4)]
HAND_BONES = ([(0, 1), (1, 2), (2, 3), (3, 4)]
              + [(0, 5 + 4 * f) for f in range(4)]
              + [(5 + 4 * f + j, 6 + 4 * f + j) for f in range(4) for j in range(3)])


def flip_permutation() -> np.ndarray:
    """Index permutation that swaps left and right (body, feet, hands, iBUG face)."""
    return np.array(COCO_WHOLEBODY_133.mirror)
