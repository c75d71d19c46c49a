"""SynthSign generator parameters: one frozen dataclass, named presets, and a stable hash.

Every number that influences the generated arrays lives here, so that the on-disk cache can be
keyed by `SynthSignConfig.sha256()` (which also covers `GENERATOR_VERSION`): change a knob or the
generator and a new cache directory is used; nothing stale is ever read back.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from typing import Any

from slrbench.config import check_fields
from slrbench.errors import SlrbenchError

# Bump whenever the generator's output for a given config changes (new cache key).
GENERATOR_VERSION = "1.1.0"


@dataclass(frozen=True)
class SynthSignConfig:
    """All generator parameters; build one with
    `SynthSignConfig.preset(name, seed, **overrides)`."""

    # The preset this config was built from (a field, not the `preset()` constructor).
    preset_name: str = "tiny"
    seed: int = 0

    # --- size -----------------------------------------------------------------------------
    n_classes: int = 20
    n_train_signers: int = 9
    n_val_signers: int = 3  # at least 3 with a left-dominant one: val must stand for test
    n_test_signers: int = 3
    repetitions: int = 3  # samples per (class, signer)
    family_sizes: tuple[int, ...] = (4, 5, 6)  # a base sign plus 3-5 one-parameter variants

    # --- vocabulary -----------------------------------------------------------------------
    semantic_rate: float = 0.7  # P(a family draws all its glosses from one semantic cluster)

    # --- recording format -----------------------------------------------------------------
    frame_size: tuple[int, int] = (256, 256)  # (width, height) of pose pixel coordinates
    fps: float = 25.0
    imu_rate_hz: float = 100.0
    min_frames: int = 24
    max_frames: int = 56

    # --- signers --------------------------------------------------------------------------
    left_handed_rate: float = 0.2
    signer_variation: float = 1.3  # scales inter-signer spread of body proportions and framing
    speed_variation: float = 0.20  # std of the signer's tempo factor (log scale)
    amplitude_variation: float = 0.15  # std of the signer's movement amplitude (log scale)
    location_bias_m: float = 0.04  # std of the signer's systematic location offset (metres)
    sloppiness: float = 0.20  # std (rad) of the signer's handshape flexion bias

    # --- per-sample variation ("style noise") ---------------------------------------------
    style_noise: float = 2.0  # scales per-sample/per-repetition variation of path and timing
    location_noise_m: float = 0.045  # per-sample std of the location target (metres)
    handshape_noise: float = 0.20  # per-sample std (rad) of finger flexion
    orientation_noise: float = 0.12  # per-sample std (rad) of the palm orientation

    # --- pose detector artefacts (pixels of `frame_size`) ---------------------------------
    keypoint_jitter_px: float = 2.0  # body and head
    face_jitter_px: float = 0.8
    hand_jitter_px: float = 5.0
    lower_body_jitter_px: float = 10.0
    jitter_corr_frames: float = 2.5  # temporal correlation length of the jitter
    hand_dropout_rate: float = 0.10  # expected fraction of frames with a hand lost (in bursts)
    camera_jitter_px: float = 2.0  # per-sample framing shift

    # --- IMU ------------------------------------------------------------------------------
    acc_noise: float = 0.05  # m/s^2, white noise std per sample
    gyro_noise: float = 0.02  # rad/s
    acc_bias: float = 0.08  # m/s^2, std of the per-recording constant bias
    gyro_bias: float = 0.01  # rad/s

    # --- RGB ------------------------------------------------------------------------------
    clutter: int = 7  # background objects
    lighting_variation: float = 0.15  # amplitude of the brightness/colour drift over a clip
    pixel_noise: float = 3.0  # std of additive noise in 0..255 units

    def __post_init__(self) -> None:
        for name in ("n_classes", "n_train_signers", "n_val_signers", "n_test_signers",
                     "repetitions"):
            if int(getattr(self, name)) < 1:
                raise SlrbenchError(f"SynthSignConfig.{name}: found {getattr(self, name)}, "
                                    "expected an integer >= 1")
        if not 0.0 <= self.semantic_rate <= 1.0:
            raise SlrbenchError(f"SynthSignConfig.semantic_rate: found {self.semantic_rate}, "
                                "expected a value in [0, 1]")
        if not 0.0 <= self.left_handed_rate <= 1.0:
            raise SlrbenchError(f"SynthSignConfig.left_handed_rate: found "
                                f"{self.left_handed_rate}, expected a value in [0, 1]")
        if not 0.0 <= self.hand_dropout_rate < 1.0:
            raise SlrbenchError(f"SynthSignConfig.hand_dropout_rate: found "
                                f"{self.hand_dropout_rate}, expected a value in [0, 1)")
        if self.min_frames < 8 or self.max_frames < self.min_frames:
            raise SlrbenchError(f"SynthSignConfig: min_frames={self.min_frames}, max_frames="
                                f"{self.max_frames}; expected 8 <= min_frames <= max_frames")
        if not self.family_sizes or min(self.family_sizes) < 1:
            raise SlrbenchError(f"SynthSignConfig.family_sizes: found {self.family_sizes}, "
                                "expected positive integers")
        if len(tuple(self.frame_size)) != 2 or min(int(v) for v in self.frame_size) < 32:
            raise SlrbenchError(f"SynthSignConfig.frame_size: found {self.frame_size}, "
                                "expected (width, height) of at least 32 px")
        if self.fps <= 0 or self.imu_rate_hz <= 0:
            raise SlrbenchError(f"SynthSignConfig: fps={self.fps}, imu_rate_hz="
                                f"{self.imu_rate_hz}; expected positive rates")
        # Lists from JSON/CLI become tuples so the dataclass stays hashable and hashes stably.
        object.__setattr__(self, "frame_size", tuple(int(v) for v in self.frame_size))
        object.__setattr__(self, "family_sizes", tuple(int(v) for v in self.family_sizes))

    # ------------------------------------------------------------------------------------
    @classmethod
    def preset(cls, name: str = "tiny", seed: int = 0, **overrides: Any) -> SynthSignConfig:
        """The named preset (`PRESETS`) with `seed` and any field overridden."""
        if name not in PRESETS:
            raise SlrbenchError(f"SynthSign preset '{name}' is unknown; expected one of "
                                f"{sorted(PRESETS)}")
        check_fields(cls, overrides, "SynthSignConfig")
        values: dict[str, Any] = {**PRESETS[name], **overrides, "preset_name": name,
                                  "seed": int(seed)}
        return cls(**values)

    def noise_free(self) -> SynthSignConfig:
        """A copy with every detector/sensor/pixel artefact switched off (for physics tests).
        Signer and style variation stay: they are the sign, not measurement noise."""
        return replace(self, keypoint_jitter_px=0.0, face_jitter_px=0.0, hand_jitter_px=0.0,
                       lower_body_jitter_px=0.0, hand_dropout_rate=0.0, camera_jitter_px=0.0,
                       acc_noise=0.0, gyro_noise=0.0, acc_bias=0.0, gyro_bias=0.0,
                       pixel_noise=0.0)

    @property
    def n_signers(self) -> int:
        return self.n_train_signers + self.n_val_signers + self.n_test_signers

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["frame_size"] = list(self.frame_size)
        data["family_sizes"] = list(self.family_sizes)
        return data

    def sha256(self) -> str:
        """Hash of every parameter plus the generator version: the cache key."""
        payload = {"generator_version": GENERATOR_VERSION, **self.to_dict()}
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


# Presets only list what differs from the dataclass defaults (which are the `tiny` values).
PRESETS: dict[str, dict[str, Any]] = {
    # CI-sized: 20 classes x 15 signers (9/3/3) x 3 repetitions = 540 / 180 / 180 samples.
    "tiny": {},
    # 64 classes x 24 signers (16/3/5) x 2 repetitions = 2048 / 384 / 640 samples.
    "default": {
        "n_classes": 64,
        "n_train_signers": 16,
        "n_val_signers": 3,
        "n_test_signers": 5,
        "repetitions": 2,
    },
}
