"""The SynthSign dataset object: class set, signers, splits, on-disk cache and the modalities.

Pose and IMU arrays are generated together (one pass over the samples) and cached under
`cache_dir/<config hash>/`; RGB is rendered lazily per (split, size, frames) and cached beside
them. Every cache file is written to a temporary name and moved into place with `os.replace`,
and `meta.json` is written last, so an interrupted run never leaves a cache that looks
complete. A cache file that cannot be read is regenerated with a warning: it is derived data.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from filelock import FileLock

from slrbench import paths
from slrbench.datasets.base import SPLITS, DatasetSpec, PoseArrays, SensorArrays
from slrbench.datasets.frame_cache import FrameCache, grid_positions
from slrbench.errors import SlrbenchError
from slrbench.store.atomic import atomic_write_with

from . import artefacts, imu
from .body import Signer, sample_signers
from .config import GENERATOR_VERSION, SynthSignConfig
from .layout import LAYOUT, N_KEYPOINTS
from .motion import Motion, synthesize
from .phonology import PAIR_KINDS, ClassInfo, build_classes, gloss_attribution
from .render import render_clip

# Incremented every time pose+sensor arrays are generated (not loaded) in this process; tests
# use it to tell a cache hit from a regeneration.
GENERATION_COUNT = 0

_POSE_FILE = "{split}.npz"
_RGB_FILE = "rgb_{split}_{size}px_{frames}f.npy"
_META_FILE = "meta.json"
RGB_SIZE = 64  # side of the RGB frames `rgb()` returns by default (what video methods read)

# Seed-sequence tags: independent random streams per purpose, so e.g. the class set does not
# change when the number of signers does, and noise knobs do not change the motion.
_TAG_CLASSES, _TAG_SIGNERS, _TAG_SAMPLES, _TAG_IDS = 1, 2, 3, 4


@dataclass(frozen=True)
class _Sample:
    id: str
    split: str
    label: int
    signer: int  # index into SynthSign.signer_list
    repetition: int


class SynthSign:
    """A generated SynthSign dataset (see the package docstring). Construction is cheap: it
    builds the classes, signers and splits; arrays are generated or loaded on first use
    (`load_synthsign` does it eagerly)."""

    def __init__(self, config: SynthSignConfig, cache_dir: str | Path | None = None) -> None:
        self.config = config
        root = Path(cache_dir).expanduser() if cache_dir is not None else (
            paths.cache_dir() / "synthsign")
        self.config_sha256 = config.sha256()
        self.cache_path = root / self.config_sha256[:20]
        self.generated = False  # True once this object generated arrays instead of loading

        seed = int(config.seed)
        self.classes: list[ClassInfo]
        self.minimal_pairs: list[tuple[int, int, str]]
        self.classes, self.minimal_pairs = build_classes(
            config.n_classes, config.family_sizes, config.semantic_rate,
            np.random.default_rng(np.random.SeedSequence([seed, _TAG_CLASSES])))
        self.signer_list: list[Signer] = sample_signers(
            config, np.random.default_rng(np.random.SeedSequence([seed, _TAG_SIGNERS])))

        # Sample ids: signer + a running number in a shuffled order, so ids carry no label.
        id_rng = np.random.default_rng(np.random.SeedSequence([seed, _TAG_IDS]))
        self._samples: dict[str, list[_Sample]] = {s: [] for s in SPLITS}
        per_signer = config.n_classes * config.repetitions
        for sg in self.signer_list:
            numbers = id_rng.permutation(per_signer)
            k = 0
            for c in range(config.n_classes):
                for r in range(config.repetitions):
                    sid = f"{sg.id}_{int(numbers[k]):05d}"
                    k += 1
                    self._samples[sg.split].append(_Sample(sid, sg.split, c, sg.index, r))
        for split in SPLITS:
            self._samples[split].sort(key=lambda x: x.id)

        self.spec = DatasetSpec(
            # Named by the configuration, so records of a custom SynthSign never pass for a
            # registry dataset's; `load_dataset` renames the registry presets (synthsign-tiny).
            name=f"synthsign-{config.sha256()[:8]}",
            version=GENERATOR_VERSION,
            title="SynthSign: procedural isolated signs (pose, RGB, wrist IMU)",
            classes=tuple(c.gloss for c in self.classes),
            splits={s: tuple(x.id for x in self._samples[s]) for s in SPLITS},
            modalities=("pose", "rgb", "sensor"),
            layout=LAYOUT,
            frame_size=tuple(config.frame_size),  # type: ignore[arg-type]
            fps=float(config.fps),
            signer_independent=True,
            notes=(
                "Generated: every modality comes from one 3-D body motion per sample.",
                "Signer-independent splits (disjoint synthetic signers); val selects, "
                "test reports.",
                "Classes come in families of minimal pairs (handshape / location / movement).",
            ),
            citation="SynthSign (slrbench built-in generator). Glosses: Li et al., "
                     "Word-level Deep Sign Language Recognition from Video, WACV 2020 (WLASL).",
            license="Generator output: free to use. Gloss strings: WLASL v0.3, C-UDA-1.0 "
                    "(research use).",
            extra={
                "preset": config.preset_name,
                "seed": seed,
                "config_sha256": self.config_sha256,
                "cache_dir": str(self.cache_path),
                "config": config.to_dict(),
                "imu_rate_hz": float(config.imu_rate_hz),
                "sensor_channels": list(imu.CHANNELS),
                "clusters": [c.cluster for c in self.classes],
                "minimal_pairs": {k: sum(1 for *_, kk in self.minimal_pairs if kk == k)
                                  for k in PAIR_KINDS},
                "gloss_attribution": gloss_attribution(),
            },
        )
        self._arrays: dict[str, dict[str, np.ndarray]] | None = None
        self._rgb: dict[tuple[str, int, int], FrameCache] = {}

    # ------------------------------------------------------------------------------------
    # Small accessors

    def _check_split(self, split: str) -> list[_Sample]:
        if split not in self._samples:
            raise SlrbenchError(f"SynthSign: unknown split '{split}'; expected one of "
                                f"{list(SPLITS)}")
        return self._samples[split]

    def labels(self, split: str) -> np.ndarray:
        return np.array([x.label for x in self._check_split(split)], dtype=np.int64)

    def signers(self, split: str) -> np.ndarray:
        return np.array([self.signer_list[x.signer].id for x in self._check_split(split)],
                        dtype=str)

    def ids(self, split: str) -> tuple[str, ...]:
        return self.spec.splits[split]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def max_frames(self) -> int:
        return int(self.config.max_frames)

    @property
    def max_imu_samples(self) -> int:
        return round(self.config.max_frames * self.config.imu_rate_hz / self.config.fps)

    def _seeds(self, x: _Sample) -> list[np.random.SeedSequence]:
        """[motion, pose artefacts, IMU noise, RGB] streams of one sample."""
        ss = np.random.SeedSequence([int(self.config.seed), _TAG_SAMPLES, x.signer, x.label,
                                     x.repetition])
        return ss.spawn(4)

    def motion(self, split: str, i: int) -> Motion:
        """The noise-free continuous motion behind sample `i` of `split` (re-synthesised)."""
        x = self._check_split(split)[i]
        return synthesize(self.classes[x.label], self.signer_list[x.signer], self.config,
                          self._seeds(x)[0])

    # ------------------------------------------------------------------------------------
    # Pose + sensor: generate or load

    def _generate(self) -> dict[str, dict[str, np.ndarray]]:
        global GENERATION_COUNT
        cfg = self.config
        T, S = self.max_frames, self.max_imu_samples
        out: dict[str, dict[str, np.ndarray]] = {}
        for split in SPLITS:
            samples = self._samples[split]
            n = len(samples)
            pose = np.zeros((n, T, N_KEYPOINTS, 3), np.float32)
            sensor = np.zeros((n, S, len(imu.CHANNELS)), np.float32)
            pose_len = np.zeros(n, np.int64)
            sensor_len = np.zeros(n, np.int64)
            for i, x in enumerate(samples):
                s_motion, s_pose, s_imu, _ = self._seeds(x)
                m = synthesize(self.classes[x.label], self.signer_list[x.signer], cfg, s_motion)
                p = artefacts.detect(m, cfg, np.random.default_rng(s_pose))
                u = imu.simulate(m, cfg, np.random.default_rng(s_imu))
                pose[i, :len(p)] = p
                sensor[i, :len(u)] = u
                pose_len[i], sensor_len[i] = len(p), len(u)
            out[split] = {"pose": pose, "pose_lengths": pose_len, "sensor": sensor,
                          "sensor_lengths": sensor_len}
        GENERATION_COUNT += 1
        self.generated = True
        return out

    def _write_cache(self, arrays: dict[str, dict[str, np.ndarray]]) -> None:
        for split, a in arrays.items():
            # Stored ragged (valid frames only) to keep the cache small; padded on load.
            lp, ls = a["pose_lengths"], a["sensor_lengths"]
            pose = np.concatenate([a["pose"][i, :lp[i]] for i in range(len(lp))]) if len(lp) \
                else np.zeros((0, N_KEYPOINTS, 3), np.float32)
            sensor = np.concatenate([a["sensor"][i, :ls[i]] for i in range(len(ls))]) \
                if len(ls) else np.zeros((0, len(imu.CHANNELS)), np.float32)
            payload = {"pose": pose, "pose_lengths": lp, "sensor": sensor, "sensor_lengths": ls,
                       "ids": np.array(self.spec.splits[split], dtype=str),
                       "labels": self.labels(split)}

            def write(fh: BinaryIO, p: dict[str, Any] = payload) -> None:
                np.savez(fh, **p)

            atomic_write_with(self.cache_path / _POSE_FILE.format(split=split), write)
        meta = {
            "generator_version": GENERATOR_VERSION,
            "config_sha256": self.config_sha256,
            "config": self.config.to_dict(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "counts": {s: len(self._samples[s]) for s in SPLITS},
            "num_classes": self.num_classes,
        }
        text = json.dumps(meta, indent=2, sort_keys=True).encode("utf-8")
        atomic_write_with(self.cache_path / _META_FILE, lambda fh: fh.write(text))

    def _read_cache(self) -> dict[str, dict[str, np.ndarray]]:
        """Load the cache; raises on anything missing, stale or malformed."""
        meta = json.loads((self.cache_path / _META_FILE).read_text(encoding="utf-8"))
        if meta.get("config_sha256") != self.config_sha256:
            raise ValueError("meta.json belongs to another configuration")
        T, S = self.max_frames, self.max_imu_samples
        out = {}
        for split in SPLITS:
            with np.load(self.cache_path / _POSE_FILE.format(split=split)) as z:
                ids = tuple(str(v) for v in z["ids"])
                if ids != self.spec.splits[split]:
                    raise ValueError(f"{split}: sample ids differ from the configuration")
                lp, ls = z["pose_lengths"].astype(np.int64), z["sensor_lengths"].astype(np.int64)
                flat_p, flat_s = z["pose"], z["sensor"]
                if flat_p.shape != (lp.sum(), N_KEYPOINTS, 3) or flat_s.shape != (
                        ls.sum(), len(imu.CHANNELS)) or lp.max(initial=0) > T or \
                        ls.max(initial=0) > S:
                    raise ValueError(f"{split}: array shapes do not match the lengths")
            n = len(ids)
            pose = np.zeros((n, T, N_KEYPOINTS, 3), np.float32)
            sensor = np.zeros((n, S, len(imu.CHANNELS)), np.float32)
            op = np.concatenate([[0], np.cumsum(lp)])
            os_ = np.concatenate([[0], np.cumsum(ls)])
            for i in range(n):
                pose[i, :lp[i]] = flat_p[op[i]:op[i + 1]]
                sensor[i, :ls[i]] = flat_s[os_[i]:os_[i + 1]]
            out[split] = {"pose": pose, "pose_lengths": lp, "sensor": sensor,
                          "sensor_lengths": ls}
        return out

    def prepare(self) -> SynthSign:
        """Load the cached arrays, or generate and cache them. Returns self."""
        if self._arrays is not None:
            return self
        self.cache_path.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.cache_path / ".lock")):
            if (self.cache_path / _META_FILE).exists():
                try:
                    self._arrays = self._read_cache()
                    return self
                except Exception as exc:  # derived data: say so, then rebuild it
                    warnings.warn(f"SynthSign cache {self.cache_path} is unreadable "
                                  f"({type(exc).__name__}: {exc}); regenerating it",
                                  RuntimeWarning, stacklevel=2)
            self._arrays = self._generate()
            self._write_cache(self._arrays)
        return self

    def _split_arrays(self, split: str) -> dict[str, np.ndarray]:
        self._check_split(split)
        self.prepare()
        assert self._arrays is not None
        return self._arrays[split]

    def pose(self, split: str) -> PoseArrays:
        a = self._split_arrays(split)
        return PoseArrays(data=a["pose"], lengths=a["pose_lengths"], layout=LAYOUT,
                          frame_size=tuple(self.config.frame_size))  # type: ignore[arg-type]

    def sensor(self, split: str) -> SensorArrays:
        a = self._split_arrays(split)
        return SensorArrays(data=a["sensor"], lengths=a["sensor_lengths"],
                            rate_hz=float(self.config.imu_rate_hz), channels=imu.CHANNELS)

    # ------------------------------------------------------------------------------------
    # RGB (lazy)

    def frame_indices(self, length: int, frames: int) -> np.ndarray:
        """`frames` indices spread uniformly over a clip of `length` frames (the frame cache's
        grid)."""
        return grid_positions(length, frames)

    def render_sample(self, split: str, i: int, size: int = RGB_SIZE, frames: int = 16,
                      motion: Motion | None = None) -> np.ndarray:
        """(frames, size, size, 3) uint8 frames of one sample (not cached)."""
        x = self._check_split(split)[i]
        m = motion if motion is not None else self.motion(split, i)
        idx = self.frame_indices(m.n_frames, frames)
        return render_clip(m, idx, size, self.config, np.random.default_rng(self._seeds(x)[3]))

    def frame_cache(self, split: str, size: int = RGB_SIZE, frames: int = 16) -> FrameCache:
        """The split's rendered frames, `frames` per clip spread uniformly over it, each clip
        rendered on first use and the whole split cached in memory and on disk per
        (split, size, frames) (docs/formats/video.md#decoded-frame-cache)."""
        samples = self._check_split(split)
        if int(size) < 16 or int(frames) < 1:
            raise SlrbenchError(f"SynthSign.rgb: size={size}, frames={frames}; expected "
                                "size >= 16 and frames >= 1")
        key = (split, int(size), int(frames))
        if key not in self._rgb:
            path = self.cache_path / _RGB_FILE.format(split=split, size=int(size),
                                                      frames=int(frames))
            self._rgb[key] = FrameCache(
                len(samples), (int(frames), int(size), int(size)),
                lambda i: self.render_sample(split, i, int(size), int(frames)), path)
        return self._rgb[key]

    def rgb(self, split: str, size: int = RGB_SIZE, frames: int = 16) -> np.ndarray:
        """(N, frames, size, size, 3) uint8, frames sampled uniformly over each clip (rendered
        on first request; see `frame_cache`)."""
        return self.frame_cache(split, size, frames).array()

    # ------------------------------------------------------------------------------------

    def describe(self) -> str:
        cfg = self.config
        lines = [
            f"SynthSign v{GENERATOR_VERSION}  preset={cfg.preset_name}  seed={cfg.seed}  "
            f"config_sha256={self.config_sha256[:16]}…",
            f"cache: {self.cache_path}",
            f"modalities: pose ({LAYOUT}, frame {cfg.frame_size[0]}x{cfg.frame_size[1]} px, "
            f"{cfg.fps:g} fps, {cfg.min_frames}-{cfg.max_frames} frames), rgb (lazy, default "
            f"64x64 x 16 frames), sensor (2 wrist IMUs, {cfg.imu_rate_hz:g} Hz, "
            f"{len(imu.CHANNELS)} channels: {', '.join(imu.CHANNELS)})",
            "samples: " + ", ".join(f"{s} {len(self._samples[s])}" for s in SPLITS)
            + f"  (total {sum(len(v) for v in self._samples.values())})",
        ]
        for split in SPLITS:
            sg = [self.signer_list[i] for i in sorted({x.signer for x in self._samples[split]})]
            lines.append(f"signers {split} ({len(sg)}): " + ", ".join(
                s.id + ("(L)" if s.left_handed else "") for s in sg))
        kinds = {k: sum(1 for *_, kk in self.minimal_pairs if kk == k) for k in PAIR_KINDS}
        lines.append(f"classes: {self.num_classes} in {len({c.family for c in self.classes})} "
                     f"families; minimal pairs: " + ", ".join(f"{k} {v}" for k, v in kinds.items())
                     + f"; semantic_rate={cfg.semantic_rate}")
        lines.append("  idx gloss          cluster        fam hands sym          dom nd  "
                     "location  movement orient reps")
        for c in self.classes:
            lines.append(
                f"  {c.index:3d} {c.gloss:<14.14} {c.cluster:<14.14} {c.family:3d} {c.hands:5d} "
                f"{c.symmetry:<12} {c.handshape_dominant:<3} {c.handshape_nondominant or '-':<3} "
                f"{c.location:<9} {c.movement:<8} {c.orientation:<6} {c.repetitions:4d}")
        knobs = ("keypoint_jitter_px", "hand_jitter_px", "hand_dropout_rate", "signer_variation",
                 "style_noise", "location_noise_m", "handshape_noise", "sloppiness")
        lines.append("difficulty: " + ", ".join(f"{k}={getattr(cfg, k)}" for k in knobs))
        return "\n".join(lines)

    def __reduce__(self) -> tuple[Any, ...]:
        # Worker processes reopen the on-disk cache instead of receiving the arrays by pickle.
        return (_reopen, (self.config, self.cache_path.parent, self.spec))

    def __repr__(self) -> str:
        n = {s: len(v) for s, v in self._samples.items()}
        return (f"SynthSign(preset={self.config.preset_name!r}, seed={self.config.seed}, "
                f"classes={self.num_classes}, samples={n})")


def _reopen(config: SynthSignConfig, cache_root: Path, spec: DatasetSpec) -> SynthSign:
    dataset = SynthSign(config, cache_dir=cache_root).prepare()
    dataset.spec = spec  # the registry renames the spec after loading
    return dataset


def load_synthsign(preset: str = "tiny", seed: int = 0, cache_dir: str | Path | None = None,
                   **overrides: Any) -> SynthSign:
    """Build the configuration, then load the cached pose+sensor arrays or generate them."""
    cfg = SynthSignConfig.preset(preset, seed=seed, **overrides)
    return SynthSign(cfg, cache_dir=cache_dir).prepare()
