"""Pose-detector artefacts on top of the noise-free projection: temporally correlated jitter
(largest on hands and on the half-visible lower body), plausible confidence scores, hands that
are lost for a few frames (score 0 and x = y = 0: the whole-body "undetected = zeros"
convention) and clipping to the image, where top-down estimators put out-of-frame points."""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

from . import layout as L
from .config import SynthSignConfig
from .motion import Motion


def correlated_noise(rng: np.random.Generator, shape: tuple[int, ...], corr: float
                     ) -> np.ndarray:
    """Unit-variance AR(1) noise along axis 0 with correlation length `corr` frames."""
    n = shape[0]
    burn = int(3 * corr) + 1
    white = rng.standard_normal((n + burn,) + shape[1:])
    if corr <= 0:
        return white[burn:]
    a = float(np.exp(-1.0 / corr))
    out = lfilter([np.sqrt(1 - a * a)], [1.0, -a], white, axis=0)
    return out[burn:]


def _bursts(rng: np.random.Generator, n: int, rate: float, mean_len: float = 3.0) -> np.ndarray:
    """Boolean (n,) mask: bursts of lost frames covering about `rate` of the clip."""
    lam = rate * n / mean_len
    k = rng.poisson(lam)
    starts = rng.integers(0, n, k)
    lengths = 1 + rng.poisson(mean_len - 1, k)
    mask = np.zeros(n, bool)
    for s, ln in zip(starts, lengths):
        mask[s:s + ln] = True
    return mask


def detect(motion: Motion, cfg: SynthSignConfig, rng: np.random.Generator) -> np.ndarray:
    """(T, 133, 3) float32 keypoints (x, y, score) as a whole-body detector would report them.

    Draws the same random numbers whatever the knob values, so a noise-free config shares
    everything else with its noisy twin."""
    kp = motion.keypoints2d.copy()
    T = kp.shape[0]
    w, h = motion.camera.frame_size
    k = h / 256.0  # knobs are in pixels of a 256-px-high frame
    sigma = np.full(L.N_KEYPOINTS, cfg.keypoint_jitter_px)
    sigma[L.LOWER_BODY] = cfg.lower_body_jitter_px
    sigma[L.FACE_IDX] = cfg.face_jitter_px
    hand_idx = np.concatenate([L.LEFT_HAND_IDX, L.RIGHT_HAND_IDX])
    sigma[hand_idx] = cfg.hand_jitter_px
    noise = correlated_noise(rng, (T, L.N_KEYPOINTS, 2), cfg.jitter_corr_frames)
    # A fast hand blurs: jitter grows with wrist speed (m/s).
    speed = motion.hand_speed_video  # (T, 2) [left, right]
    blur = 1.0 + 0.6 * np.clip(speed, 0.0, 2.0)
    scale = np.broadcast_to(sigma * k, (T, L.N_KEYPOINTS)).copy()
    scale[:, L.LEFT_HAND_IDX] *= blur[:, 0:1]
    scale[:, L.RIGHT_HAND_IDX] *= blur[:, 1:2]
    # The wrists of the body model share part of the hands' trouble.
    scale[:, [L.L_WRIST, L.R_WRIST]] *= np.sqrt(blur)
    xy = kp + noise * scale[..., None]

    # Scores: a per-part level, slow fluctuations, lower for fast hands.
    s_noise = correlated_noise(rng, (T, L.N_KEYPOINTS), 4.0)
    base = np.full(L.N_KEYPOINTS, 0.90)
    spread = np.full(L.N_KEYPOINTS, 0.04)
    base[L.FACE_IDX], spread[L.FACE_IDX] = 0.80, 0.06
    base[hand_idx], spread[hand_idx] = 0.70, 0.10
    base[[L.L_HIP, L.R_HIP]], spread[[L.L_HIP, L.R_HIP]] = 0.35, 0.10
    knees_down = np.arange(13, 23)
    base[knees_down], spread[knees_down] = 0.10, 0.05
    score = base + spread * s_noise
    score[:, L.LEFT_HAND_IDX] -= 0.12 * np.clip(speed[:, 0:1], 0, 2)
    score[:, L.RIGHT_HAND_IDX] -= 0.12 * np.clip(speed[:, 1:2], 0, 2)

    # Out-of-frame points: clipped to the image border with a low score.
    outside = (xy[..., 0] < 0) | (xy[..., 0] > w - 1) | (xy[..., 1] < 0) | (xy[..., 1] > h - 1)
    score = np.where(outside, np.minimum(score, 0.05 + 0.1 * rng.random(score.shape)), score)
    xy[..., 0] = np.clip(xy[..., 0], 0, w - 1)
    xy[..., 1] = np.clip(xy[..., 1], 0, h - 1)
    score = np.clip(score, 0.01, 0.99)

    # Lost hands: mostly outside the frame (at rest, below it) or a random burst.
    burst_u = [_bursts(rng, T, cfg.hand_dropout_rate) for _ in range(2)]
    for side, idx in enumerate((L.LEFT_HAND_IDX, L.RIGHT_HAND_IDX)):
        inside = ~outside[:, idx]
        lost = (inside.mean(1) < 0.4) | outside[:, idx[0]] | burst_u[side]
        sel = np.zeros((T, L.N_KEYPOINTS), bool)
        sel[np.ix_(lost, idx)] = True
        xy[sel] = 0.0
        score[sel] = 0.0
    return np.concatenate([xy, score[..., None]], -1).astype(np.float32)
