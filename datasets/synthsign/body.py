"""Signers (body proportions, framing, tempo, style, appearance) and the body model: static
skeleton landmarks and a 2-link arm IK.

World frame (metres): origin on the floor between the feet, x = the signer's left, y = up,
z = towards the camera. The signer faces the camera, so an unflipped image shows the signer's
left shoulder on the image's right.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from .config import SynthSignConfig
from .hands import N_SHAPE

# A palette of skin tones (RGB 0..1), from light to dark; each signer gets one, jittered.
_SKIN = np.array([[0.95, 0.80, 0.69], [0.90, 0.72, 0.58], [0.80, 0.60, 0.45],
                  [0.66, 0.46, 0.32], [0.50, 0.34, 0.23], [0.36, 0.24, 0.17]])
_HAIR = np.array([[0.10, 0.08, 0.07], [0.30, 0.20, 0.12], [0.55, 0.40, 0.22],
                  [0.80, 0.68, 0.45], [0.45, 0.45, 0.45], [0.55, 0.25, 0.12]])


@dataclass(frozen=True)
class Signer:
    """One synthetic signer. Lengths in metres; colours RGB in 0..1."""

    id: str
    index: int
    split: str
    left_handed: bool
    height: float
    shoulder_width: float
    upper_arm: float
    forearm: float
    head_scale: float
    hand_scale: float
    px_scale: float  # multiplier of the nominal pixels-per-metre framing
    offset_px: tuple[float, float]  # framing shift (x, y) at the 256-px reference frame
    speed: float  # > 1 signs faster
    amplitude: float  # movement size multiplier
    location_bias: tuple[float, float, float]
    shape_bias: tuple[float, ...]  # handshape flexion bias (sloppiness), N_SHAPE values
    swivel: float  # elbow swivel preference (rad)
    skin: tuple[float, float, float]
    shirt: tuple[float, float, float]
    hair: tuple[float, float, float]
    scene_seed: int  # background / clutter / lighting of this signer's recordings

    @property
    def handedness(self) -> str:
        return "left" if self.left_handed else "right"


def _hsv(h: float, s: float, v: float) -> tuple[float, float, float]:
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    return [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]


def _floats3(values: Iterable[float]) -> tuple[float, float, float]:
    """Three values as a tuple of Python floats (colours, per-axis biases)."""
    x, y, z = (float(v) for v in values)
    return x, y, z


def sample_signers(cfg: SynthSignConfig, rng: np.random.Generator) -> list[Signer]:
    """`cfg.n_signers` signers with ids sg00..; splits are disjoint by construction."""
    n = cfg.n_signers
    order = rng.permutation(n)
    split_of = {}
    counts = [("train", cfg.n_train_signers), ("val", cfg.n_val_signers),
              ("test", cfg.n_test_signers)]
    k = 0
    left: set[int] = set()
    for split, c in counts:
        members = [int(i) for i in order[k:k + c]]
        k += c
        for i in members:
            split_of[i] = split
        # A left-dominant signer in every split of two or more signers: mirroring is learnt on
        # train, and val, which selects checkpoints and fusion weights, sees what test sees.
        n_left = round(cfg.left_handed_rate * c)
        if cfg.left_handed_rate > 0 and c >= 2:
            n_left = max(n_left, 1)
        left.update(int(i) for i in rng.permutation(members)[:n_left])

    v = cfg.signer_variation
    signers = []
    for i in range(n):
        height = 1.70 * float(np.exp(rng.normal(0, 0.05 * v)))
        rel = height / 1.70
        skin = np.clip(_SKIN[rng.integers(len(_SKIN))] + rng.normal(0, 0.03, 3), 0, 1)
        hair = np.clip(_HAIR[rng.integers(len(_HAIR))] + rng.normal(0, 0.03, 3), 0, 1)
        shirt = _hsv(float(rng.random()), float(rng.uniform(0.3, 0.9)),
                     float(rng.uniform(0.25, 0.85)))
        signers.append(Signer(
            id=f"sg{i:02d}",
            index=i,
            split=split_of[i],
            left_handed=i in left,
            height=height,
            shoulder_width=0.36 * rel * float(np.exp(rng.normal(0, 0.06 * v))),
            upper_arm=0.29 * rel * float(np.exp(rng.normal(0, 0.04 * v))),
            forearm=0.25 * rel * float(np.exp(rng.normal(0, 0.04 * v))),
            head_scale=rel * float(np.exp(rng.normal(0, 0.05 * v))),
            hand_scale=rel * float(np.exp(rng.normal(0, 0.06 * v))),
            px_scale=float(np.exp(rng.normal(0, 0.08 * v))),
            offset_px=(float(rng.normal(0, 12 * v)), float(rng.normal(0, 10 * v))),
            speed=float(np.exp(rng.normal(0, cfg.speed_variation))),
            amplitude=float(np.exp(rng.normal(0, cfg.amplitude_variation))),
            location_bias=_floats3(rng.normal(0, cfg.location_bias_m, 3)),
            shape_bias=tuple(float(x) for x in rng.normal(0, cfg.sloppiness, N_SHAPE)),
            swivel=float(rng.normal(0, 0.15 * v)),
            skin=_floats3(skin),
            shirt=_floats3(shirt),
            hair=_floats3(hair),
            scene_seed=int(rng.integers(2**31)),
        ))
    return signers


@dataclass(frozen=True)
class Body:
    """Static landmarks of one signer (canonical pose, before sway), metres."""

    hip_y: float
    knee_y: float
    ankle_y: float
    hip_half: float
    shoulder_y: float
    shoulder_half: float
    head_center: np.ndarray  # (3,)
    head_radius: float  # ~ half the head width
    neck: np.ndarray  # (3,) base of the neck
    chest: np.ndarray
    stomach: np.ndarray
    torso_front: float  # z of the chest surface
    upper_arm: float
    forearm: float
    hand_scale: float
    camera_y: float  # world height mapped to the frame centre


def body_of(s: Signer) -> Body:
    h = s.height
    shoulder_y = 0.818 * h
    head_r = 0.078 * s.head_scale
    return Body(
        hip_y=0.53 * h,
        knee_y=0.285 * h,
        ankle_y=0.045 * h,
        hip_half=0.095 * s.shoulder_width / 0.36,
        shoulder_y=shoulder_y,
        shoulder_half=s.shoulder_width / 2.0,
        head_center=np.array([0.0, 0.93 * h, 0.0]),
        head_radius=head_r,
        neck=np.array([0.0, shoulder_y + 0.015, -0.01]),
        chest=np.array([0.0, shoulder_y - 0.12 * h / 1.7, 0.10]),
        stomach=np.array([0.0, shoulder_y - 0.30 * h / 1.7, 0.10]),
        torso_front=0.10,
        upper_arm=s.upper_arm,
        forearm=s.forearm,
        hand_scale=s.hand_scale,
        camera_y=0.775 * h,
    )


def arm_ik(shoulder: np.ndarray, wrist: np.ndarray, l1: float, l2: float, hint: np.ndarray,
           swivel: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Two-link IK, vectorised over leading axes: (elbow, reached wrist).

    The elbow lies on the circle of points l1 from the shoulder and l2 from the wrist; we take
    the point towards `hint` (down, out and back: how a relaxed arm hangs) and turn it by
    `swivel` about the shoulder-wrist axis. A target out of reach is pulled onto the sphere of
    reach (the generator keeps targets inside it, so this is only a guard)."""
    d_vec = wrist - shoulder
    d = np.linalg.norm(d_vec, axis=-1, keepdims=True)
    reach = (l1 + l2) * 0.999
    d_c = np.clip(d, abs(l1 - l2) + 1e-3, reach)
    u = d_vec / np.maximum(d, 1e-9)
    wrist_r = shoulder + u * d_c
    a = (l1 * l1 - l2 * l2 + d_c * d_c) / (2 * d_c)
    r = np.sqrt(np.clip(l1 * l1 - a * a, 0.0, None))
    centre = shoulder + u * a
    e1 = hint - np.sum(hint * u, -1, keepdims=True) * u
    e1 = e1 / np.maximum(np.linalg.norm(e1, axis=-1, keepdims=True), 1e-9)
    e2 = np.cross(u, e1)
    sw = np.asarray(swivel)[..., None] if np.ndim(swivel) else swivel
    elbow = centre + r * (np.cos(sw) * e1 + np.sin(sw) * e2)
    return elbow, wrist_r
