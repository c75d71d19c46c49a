"""Wrist IMUs: accelerometer (specific force, gravity included) and gyroscope, from the same
continuous motion as the video.

Specific force f = R^T (a - g) with g = (0, -9.81, 0) in the y-up world, R the sensor
orientation (columns = sensor axes in the world): a sensor at rest reads +9.81 along whichever
of its axes points up. The gyroscope reads the angular velocity in the sensor frame. Noise:
white noise per sample plus a constant bias per recording.
"""

from __future__ import annotations

import numpy as np

from .config import SynthSignConfig
from .motion import GRAVITY, Motion

CHANNELS: tuple[str, ...] = tuple(
    f"{side}_{kind}_{axis}" for side in ("left", "right") for kind in ("acc", "gyro")
    for axis in "xyz")
ACC_UNIT = "m/s^2"
GYRO_UNIT = "rad/s"


def specific_force(acc_world: np.ndarray, rot: np.ndarray) -> np.ndarray:
    """f = R^T (a - g): (..., 3) world accelerations, (..., 3, 3) orientations."""
    return np.einsum("...ji,...j->...i", rot, acc_world - GRAVITY)


def simulate(motion: Motion, cfg: SynthSignConfig, rng: np.random.Generator) -> np.ndarray:
    """(S, 12) float32 in `CHANNELS` order: left acc xyz, left gyro xyz, right acc, right gyro.

    Always draws the same random numbers, so the noise knobs only scale them."""
    f = specific_force(motion.wrist_acc_imu, motion.wrist_rot_imu)  # (S, 2, 3)
    w = motion.wrist_gyro_imu  # (S, 2, 3)
    S = f.shape[0]
    white = rng.standard_normal((S, 2, 2, 3))
    bias = rng.standard_normal((2, 2, 3))
    f = f + cfg.acc_noise * white[:, :, 0] + cfg.acc_bias * bias[None, :, 0]
    w = w + cfg.gyro_noise * white[:, :, 1] + cfg.gyro_bias * bias[None, :, 1]
    out = np.concatenate([f[:, 0], w[:, 0], f[:, 1], w[:, 1]], axis=1)
    return out.astype(np.float32)
