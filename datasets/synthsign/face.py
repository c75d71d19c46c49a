"""The 68 iBUG face points (and COCO nose/eyes/ears) on a 3-D head.

Head-local frame = world axes at a neutral head (x = the signer's left, y = up, z = forward),
origin at the head centre, metres at head scale 1. iBUG order runs from the subject's right
to left (image left to right for an unflipped frontal face): jaw 1-17, right brow 18-22,
left brow 23-27, nose bridge 28-31, lower nose 32-36, right eye 37-42, left eye 43-48,
outer lip 49-60, inner lip 61-68.
"""

from __future__ import annotations

import numpy as np

_RX, _RY, _RZ = 0.075, 0.115, 0.095  # face ellipsoid semi-axes


def _on_face(xy: np.ndarray, lift: float = 0.0) -> np.ndarray:
    """Put 2-D points on the front of the head ellipsoid (plus `lift` metres outwards)."""
    x, y = xy[:, 0], xy[:, 1]
    q = np.clip(1.0 - (x / _RX) ** 2 - (y / _RY) ** 2, 0.05, None)
    return np.stack([x, y, _RZ * np.sqrt(q) + lift], 1)


def _template() -> np.ndarray:
    phi = np.linspace(0.0, np.pi, 17)
    jaw = np.stack([-0.070 * np.cos(phi), 0.025 - 0.125 * np.sin(phi) ** 1.4], 1)
    brow_r = np.stack([np.linspace(-0.056, -0.012, 5),
                       0.047 + 0.007 * np.sin(np.linspace(0.2, 2.9, 5))], 1)
    brow_l = brow_r[::-1] * [-1, 1]
    bridge = np.stack([np.zeros(4), np.linspace(0.030, -0.008, 4)], 1)
    lower_nose = np.stack([np.linspace(-0.017, 0.017, 5),
                           [-0.020, -0.023, -0.025, -0.023, -0.020]], 1)
    eye_r = np.array([[-0.047, 0.027], [-0.039, 0.032], [-0.028, 0.032], [-0.019, 0.027],
                      [-0.028, 0.023], [-0.039, 0.023]])
    eye_l = eye_r[[3, 2, 1, 0, 5, 4]] * [-1, 1]
    outer = np.array([[-0.025, -0.055], [-0.016, -0.048], [-0.006, -0.045], [0.0, -0.046],
                      [0.006, -0.045], [0.016, -0.048], [0.025, -0.055], [0.016, -0.062],
                      [0.007, -0.065], [0.0, -0.066], [-0.007, -0.065], [-0.016, -0.062]])
    inner = np.array([[-0.020, -0.055], [-0.008, -0.052], [0.0, -0.052], [0.008, -0.052],
                      [0.020, -0.055], [0.008, -0.057], [0.0, -0.057], [-0.008, -0.057]])
    pts = np.concatenate([
        _on_face(jaw, -0.01), _on_face(brow_r, 0.006), _on_face(brow_l, 0.006),
        _on_face(bridge, 0.0) + [[0, 0, 0.004], [0, 0, 0.010], [0, 0, 0.017], [0, 0, 0.025]],
        _on_face(lower_nose, 0.012), _on_face(eye_r), _on_face(eye_l),
        _on_face(outer, 0.006), _on_face(inner, 0.004)])
    assert pts.shape == (68, 3)
    return pts


FACE_TEMPLATE = _template()
# Points that follow the lower jaw when the mouth opens (0-based iBUG): the chin part of the
# jaw line, the lower outer lip and the lower inner lip.
MOUTH_LOWER = np.array([5, 6, 7, 8, 9, 10, 11, 55, 56, 57, 58, 59, 65, 66, 67])
_JAW_WEIGHT = np.zeros(68)
_JAW_WEIGHT[MOUTH_LOWER] = 1.0
_JAW_WEIGHT[[5, 11]] = 0.5
_JAW_WEIGHT[[6, 10]] = 0.8

# COCO head points in the same frame: nose tip (= iBUG 31), eye centres, ears.
NOSE = FACE_TEMPLATE[30]
LEFT_EYE = FACE_TEMPLATE[42:48].mean(0)
RIGHT_EYE = FACE_TEMPLATE[36:42].mean(0)
LEFT_EAR = np.array([0.078, 0.010, -0.005])
RIGHT_EAR = np.array([-0.078, 0.010, -0.005])
CHIN = FACE_TEMPLATE[8]
FOREHEAD = np.array([0.0, 0.060, 0.090])
RIGHT_CHEEK = np.array([-0.045, -0.020, 0.075])


def head_points(center: np.ndarray, rot: np.ndarray, scale: float,
                mouth_open: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Face (T, 68, 3) and COCO head points (T, 5, 3: nose, l-eye, r-eye, l-ear, r-ear).

    `center` (T, 3) head centre, `rot` (T, 3, 3) head rotation, `mouth_open` (T,) metres."""
    face = FACE_TEMPLATE[None] * scale + np.zeros((len(center), 1, 1))
    face[:, :, 1] -= mouth_open[:, None] * _JAW_WEIGHT[None]
    coco = np.stack([NOSE, LEFT_EYE, RIGHT_EYE, LEFT_EAR, RIGHT_EAR]) * scale
    face_w = center[:, None] + np.einsum("tij,tvj->tvi", rot, face)
    coco_w = center[:, None] + np.einsum("tij,vj->tvi", rot, coco)
    return face_w, coco_w
