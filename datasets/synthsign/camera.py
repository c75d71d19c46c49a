"""A static camera in front of the signer: weak perspective with a slight depth effect."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Nominal framing at the 256-px reference frame: pixels per metre for a 1.70 m signer, chosen
# so the frame spans from just above the head to about the hips (the usual SLR framing).
REFERENCE_SIZE = 256.0
NOMINAL_PX_PER_M = 287.0


@dataclass(frozen=True)
class Camera:
    """Maps world points (x = signer's left, y up, z to camera; metres) to pixels.

    u = u0 + s * x * rho(z), v = v0 - s * (y - y_ref) * rho(z), rho(z) = D / (D - z):
    a distant camera, so nearer points (hands in front of the body) look slightly larger."""

    frame_size: tuple[int, int]  # (width, height)
    px_per_m: float
    u0: float
    v0: float
    y_ref: float
    distance: float = 3.0
    aspect: float = 1.0  # vertical / horizontal pixel scale (1 unless resized anisotropically)

    def project(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) -> (..., 2) pixel coordinates (x right, y down)."""
        rho = self.distance / (self.distance - points[..., 2])
        u = self.u0 + self.px_per_m * points[..., 0] * rho
        v = self.v0 - self.px_per_m * self.aspect * (points[..., 1] - self.y_ref) * rho
        return np.stack([u, v], -1)

    def scaled(self, size: tuple[int, int]) -> Camera:
        """The same view rendered at another resolution."""
        kx = size[0] / self.frame_size[0]
        ky = size[1] / self.frame_size[1]
        return Camera(frame_size=size, px_per_m=self.px_per_m * kx, u0=self.u0 * kx,
                      v0=self.v0 * ky, y_ref=self.y_ref, distance=self.distance,
                      aspect=self.aspect * ky / kx)

    def to_dict(self) -> dict[str, object]:
        return {"frame_size": list(self.frame_size), "px_per_m": self.px_per_m, "u0": self.u0,
                "v0": self.v0, "y_ref": self.y_ref, "distance": self.distance,
                "aspect": self.aspect}
