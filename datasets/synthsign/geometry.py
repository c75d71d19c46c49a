"""Small rotation helpers (vectorised over leading axes). World frame: x = the signer's left
(image right in an unflipped frame), y = up, z = towards the camera."""

from __future__ import annotations

import numpy as np

# Reflection across the body's mid-sagittal plane (x -> -x). Mirroring a sign for a
# left-dominant signer conjugates rotations by it: R' = M R M stays a proper rotation.
MIRROR = np.diag([-1.0, 1.0, 1.0])


def skew(v: np.ndarray) -> np.ndarray:
    """(..., 3) -> (..., 3, 3) cross-product matrices."""
    k = np.zeros(v.shape + (3,), dtype=np.result_type(v, np.float64))
    k[..., 0, 1], k[..., 0, 2] = -v[..., 2], v[..., 1]
    k[..., 1, 0], k[..., 1, 2] = v[..., 2], -v[..., 0]
    k[..., 2, 0], k[..., 2, 1] = -v[..., 1], v[..., 0]
    return k


def _coeffs(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """sin(t)/t, (1-cos t)/t^2, (t - sin t)/t^3 with Taylor series near 0."""
    small = theta < 1e-4
    t = np.where(small, 1.0, theta)
    t2 = theta * theta
    a = np.where(small, 1.0 - t2 / 6.0, np.sin(t) / t)
    b = np.where(small, 0.5 - t2 / 24.0, (1.0 - np.cos(t)) / (t * t))
    c = np.where(small, 1.0 / 6.0 - t2 / 120.0, (t - np.sin(t)) / (t * t * t))
    return a, b, c


def exp_so3(rv: np.ndarray) -> np.ndarray:
    """Rodrigues: rotation vectors (..., 3) -> rotation matrices (..., 3, 3)."""
    theta = np.linalg.norm(rv, axis=-1)
    a, b, _ = _coeffs(theta)
    k = skew(rv)
    eye = np.broadcast_to(np.eye(3), k.shape)
    return eye + a[..., None, None] * k + b[..., None, None] * (k @ k)


def right_jacobian(rv: np.ndarray) -> np.ndarray:
    """J_r(phi): body angular velocity of R0 exp(phi(t)) is J_r(phi) @ phi_dot."""
    theta = np.linalg.norm(rv, axis=-1)
    _, b, c = _coeffs(theta)
    k = skew(rv)
    eye = np.broadcast_to(np.eye(3), k.shape)
    return eye - b[..., None, None] * k + c[..., None, None] * (k @ k)


def log_so3(r: np.ndarray) -> np.ndarray:
    """Rotation matrix (3, 3) -> rotation vector (3,), robust near pi."""
    cos = np.clip((np.trace(r) - 1.0) / 2.0, -1.0, 1.0)
    theta = float(np.arccos(cos))
    if theta < 1e-6:
        return np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]]) / 2.0
    if np.pi - theta < 1e-3:
        # Near pi the antisymmetric part vanishes: read the axis off the symmetric part.
        m = (r + np.eye(3)) / 2.0
        axis = np.sqrt(np.clip(np.diag(m), 0.0, None))
        i = int(np.argmax(axis))
        axis = m[i] / np.sqrt(max(m[i, i], 1e-12))
        return axis / np.linalg.norm(axis) * theta
    w = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])
    return w * theta / (2.0 * np.sin(theta))


def frame_from(finger: np.ndarray, palm: np.ndarray) -> np.ndarray:
    """Right-hand frame with columns (thumb side, finger direction, palm normal).

    For a right hand the palm normal is thumb x finger, so thumb = finger x palm; the palm is
    re-orthogonalised against the finger direction."""
    f = np.asarray(finger, float)
    f = f / np.linalg.norm(f)
    n = np.asarray(palm, float)
    n = n - np.dot(n, f) * f
    n = n / np.linalg.norm(n)
    t = np.cross(f, n)
    return np.stack([t, f, n], axis=1)


def rot_axis(axis: np.ndarray, angle: float) -> np.ndarray:
    axis = np.asarray(axis, float)
    return exp_so3(axis / np.linalg.norm(axis) * angle)


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)
