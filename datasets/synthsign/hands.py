"""Hand model: handshapes as finger flexion/spread vectors, and forward kinematics to the 21
COCO-WholeBody hand keypoints.

Local frame of a RIGHT hand (metres, hand length ~0.19 m at scale 1): x = thumb side,
y = along the fingers, z = palm normal (the side the palm faces). Flexion bends a finger
towards +z. A left hand is the mirror image: its local points are `MIRROR @ p`, so one
table of handshapes serves both hands.
"""

from __future__ import annotations

import numpy as np

# Handshape vector layout: 4 fingers x (MCP, PIP, DIP flexion, spread) then thumb
# (abduction in the palm plane, opposition towards the palm, MCP flexion, IP flexion).
# Radians; spread > 0 turns a finger towards the thumb.
N_SHAPE = 20
FINGERS = ("index", "middle", "ring", "pinky")

_FIST = (85.0, 100.0, 60.0)
_STRAIGHT = (0.0, 0.0, 0.0)
_THUMB_ACROSS = (18.0, 50.0, 55.0, 25.0)  # over the curled fingers (S, 1, V, I)
_THUMB_TUCKED = (12.0, 45.0, 20.0, 10.0)  # folded against the palm (B)
_THUMB_OUT = (62.0, 5.0, 0.0, 0.0)  # L, Y, 5


def _shape(fingers: list[tuple[float, float, float]], spread: tuple[float, float, float, float],
           thumb: tuple[float, float, float, float]) -> np.ndarray:
    v = []
    for f, s in zip(fingers, spread):
        v.extend([*f, s])
    v.extend(thumb)
    return np.deg2rad(np.asarray(v, dtype=np.float64))


_NARROW = (3.0, 0.0, -3.0, -6.0)
_WIDE = (16.0, 0.0, -12.0, -26.0)

# ~a dozen ASL-like handshapes. Some pairs are deliberately close (A vs S differ only by the
# thumb, C vs O by the amount of curl) so handshape minimal pairs need real hand detail.
HANDSHAPES: dict[str, np.ndarray] = {
    "B": _shape([_STRAIGHT] * 4, _NARROW, _THUMB_TUCKED),
    "5": _shape([_STRAIGHT] * 4, _WIDE, (55.0, 5.0, 0.0, 0.0)),
    "A": _shape([_FIST] * 4, _NARROW, (8.0, 8.0, 0.0, 0.0)),
    "S": _shape([_FIST] * 4, _NARROW, _THUMB_ACROSS),
    "1": _shape([_STRAIGHT, _FIST, _FIST, _FIST], _NARROW, _THUMB_ACROSS),
    "V": _shape([_STRAIGHT, _STRAIGHT, _FIST, _FIST], (14.0, -10.0, -3.0, -6.0), _THUMB_ACROSS),
    "W": _shape([_STRAIGHT, _STRAIGHT, _STRAIGHT, _FIST], (16.0, 0.0, -16.0, -6.0),
                (25.0, 55.0, 65.0, 35.0)),
    "Y": _shape([_FIST, _FIST, _FIST, _STRAIGHT], (3.0, 0.0, -3.0, -30.0), _THUMB_OUT),
    "L": _shape([_STRAIGHT, _FIST, _FIST, _FIST], _NARROW, (78.0, 0.0, 0.0, 0.0)),
    "C": _shape([(30.0, 45.0, 25.0)] * 4, _NARROW, (40.0, 45.0, 15.0, 15.0)),
    "O": _shape([(50.0, 70.0, 40.0)] * 4, _NARROW, (30.0, 70.0, 30.0, 30.0)),
    "I": _shape([_FIST, _FIST, _FIST, _STRAIGHT], (3.0, 0.0, -3.0, -10.0), _THUMB_ACROSS),
}
# A relaxed hand, used at rest (not a phoneme).
REST_SHAPE = _shape([(20.0, 30.0, 15.0)] * 4, (5.0, 0.0, -5.0, -10.0), (30.0, 25.0, 10.0, 10.0))

# Finger geometry at hand scale 1 (metres): MCP positions and (proximal, middle, distal) lengths.
_MCP = np.array([[0.030, 0.092, 0.0], [0.010, 0.097, 0.0], [-0.010, 0.092, 0.0],
                 [-0.028, 0.082, 0.0]])
_SEG = np.array([[0.043, 0.025, 0.020], [0.046, 0.029, 0.021], [0.043, 0.027, 0.020],
                 [0.034, 0.020, 0.018]])
_THUMB_CMC = np.array([0.022, 0.026, 0.006])
_THUMB_SEG = np.array([0.040, 0.032, 0.026])
# The thumb curls towards the palm and across it (towards -x): its bending direction.
_THUMB_BEND = np.array([-0.85, 0.0, 0.5])

HAND_LENGTH = 0.19  # wrist to middle fingertip, straight hand, scale 1


def hand_points_local(shape: np.ndarray, scale: float | np.ndarray = 1.0) -> np.ndarray:
    """Forward kinematics of a right hand: shape (..., 20) -> 21 points (..., 21, 3), local frame.

    Keypoint order: 0 wrist; 1-4 thumb CMC, MCP, IP, tip; then MCP, PIP, DIP, tip for the
    index, middle, ring and pinky fingers (the COCO-WholeBody hand order)."""
    shape = np.asarray(shape, dtype=np.float64)
    lead = shape.shape[:-1]
    out = np.zeros(lead + (21, 3))
    s = shape[..., :16].reshape(lead + (4, 4))
    flex = np.cumsum(s[..., :3], axis=-1)  # (..., 4, 3) cumulative joint angles
    spread = s[..., 3]  # (..., 4)
    # Straight direction in the palm plane, then bent towards the palm normal (+z).
    d0 = np.stack([np.sin(spread), np.cos(spread), np.zeros_like(spread)], -1)  # (...,4,3)
    z = np.array([0.0, 0.0, 1.0])
    dirs = (np.cos(flex)[..., None] * d0[..., None, :]
            + np.sin(flex)[..., None] * z)  # (..., 4, 3 joints, 3)
    steps = dirs * _SEG[..., None]  # (..., 4, 3, 3)
    chain = _MCP[:, None, :] + np.concatenate(
        [np.zeros(lead + (4, 1, 3)), np.cumsum(steps, axis=-2)], axis=-2)  # (..., 4, 4, 3)
    out[..., 5:21, :] = chain.reshape(lead + (16, 3))

    abd, opp, t_mcp, t_ip = (shape[..., 16 + i] for i in range(4))
    base = np.stack([np.sin(abd) * np.cos(opp), np.cos(abd) * np.cos(opp), np.sin(opp)], -1)
    bend = _THUMB_BEND - (base @ _THUMB_BEND)[..., None] * base
    bend = bend / np.linalg.norm(bend, axis=-1, keepdims=True)
    angles = np.stack([np.zeros_like(t_mcp), t_mcp, t_mcp + t_ip], -1)  # (..., 3)
    tdirs = (np.cos(angles)[..., None] * base[..., None, :]
             + np.sin(angles)[..., None] * bend[..., None, :])
    tchain = _THUMB_CMC + np.cumsum(tdirs * _THUMB_SEG[:, None], axis=-2)
    out[..., 1, :] = _THUMB_CMC
    out[..., 2:5, :] = tchain
    scale = np.asarray(scale, dtype=np.float64)
    return out * scale[..., None, None] if scale.ndim else out * float(scale)
