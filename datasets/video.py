"""The shared data side of the video methods (docs/formats/video.md): decoded frames and
keypoints of one split -> per-sample RGB clips cut to the pose box and keypoint heatmap volumes
of the same crop, with the same random augmentation.

Per sample: the crop box is the padded square union box of the clip's keypoints
(`pose_box`); RGB frames are sampled from the decoded-frame grid and keypoint frames from the
whole pose sequence (`uniform_indices`, random in training and the segment middles at test);
one affine transform (the box, times a random scale, rotation and shift in training, and an
optional mirror) maps output pixels to frame pixels. RGB is resampled through it with
`grid_sample` (bilinear, zeros outside the frame), every frame of the clip at once; the
keypoints go through its inverse and are drawn as heatmaps (`joint_heatmaps`). A mirror swaps
the left and right keypoint channels, so channel c is always joint c.

`set_modalities` says what a sample carries ("rgb", "heatmap"): a modality left out is never
decoded or drawn.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch.nn import functional
from torch.utils.data import Dataset as TorchDataset

from slrbench.config import check_fields
from slrbench.datasets.base import PoseArrays
from slrbench.datasets.clips import uniform_indices
from slrbench.datasets.frame_cache import FrameCache
from slrbench.datasets.heatmaps import HeatmapConfig, joint_heatmaps
from slrbench.datasets.layouts import convert, get_layout
from slrbench.datasets.pose_box import pose_box
from slrbench.errors import SlrbenchError

VIDEO_MODALITIES = ("rgb", "heatmap")
# ImageNet statistics (pyskl's RGB normalisation), on 0-1 pixel values.
RGB_MEAN = (0.485, 0.456, 0.406)
RGB_STD = (0.229, 0.224, 0.225)
TEST_SEED = 255  # pyskl samples its test clips with a fixed seed


@dataclass(frozen=True)
class VideoAugment:
    """Training-time geometry: a random scale, rotation and shift of the crop (CAMFuse lists
    scaling, rotation and shifting) and a mirror with probability `flip_prob` (off by default:
    a mirror turns a right-handed signer left-handed)."""

    scale: tuple[float, float] = (0.9, 1.1)  # of the crop side
    rotation_deg: float = 10.0  # uniform in ±rotation_deg
    shift: float = 0.05  # of the crop side, uniform in ± per axis
    flip_prob: float = 0.0


@dataclass(frozen=True)
class VideoConfig:
    """What the pipeline does; stored in the run config (`data` section) and hashed."""

    layout: str  # heatmap channels: a keypoint layout of the dataset's pose
    rgb_size: int = 64
    rgb_frames: int = 8
    pose_frames: int = 8
    heatmap_size: int = 16
    decode_size: int = 64  # side of the cached decoded frames
    decode_frames: int = 16  # frames per clip in the cache, uniform over the clip
    box_padding: float = 0.1
    zeroed_joints: tuple[int, ...] = ()  # channels whose coordinates and scores are set to 0
    heatmap: HeatmapConfig = field(default_factory=HeatmapConfig)
    augment: VideoAugment = field(default_factory=VideoAugment)

    def __post_init__(self) -> None:
        for name in ("rgb_size", "rgb_frames", "pose_frames", "heatmap_size", "decode_size",
                     "decode_frames"):
            if int(getattr(self, name)) < 1:
                raise SlrbenchError(f"data.{name}: found {getattr(self, name)}; expected a "
                                    "positive integer")
        if self.box_padding < 0:
            raise SlrbenchError(f"data.box_padding: found {self.box_padding}; expected >= 0")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["zeroed_joints"] = list(self.zeroed_joints)
        data["augment"]["scale"] = list(self.augment.scale)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VideoConfig:
        check_fields(cls, data, "data")
        values = dict(data)
        heatmap = dict(values.get("heatmap", {}))
        check_fields(HeatmapConfig, heatmap, "data.heatmap")
        augment = dict(values.get("augment", {}))
        check_fields(VideoAugment, augment, "data.augment")
        if "scale" in augment:
            augment["scale"] = tuple(augment["scale"])
        values["heatmap"] = HeatmapConfig(**heatmap)
        values["augment"] = VideoAugment(**augment)
        values["zeroed_joints"] = tuple(values.get("zeroed_joints", ()))
        return cls(**values)


def crop_transform(box: tuple[float, float, float, float], scale: float = 1.0,
                   angle: float = 0.0, shift: tuple[float, float] = (0.0, 0.0),
                   mirror: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(A, c): crop coordinates q in [-1, 1]² -> frame pixels p = A q + c. The crop is the box
    (its half side times `scale`), rotated by `angle` (radians), moved by `shift` (fractions of
    the side) and, with `mirror`, flipped left-right."""
    x0, y0, x1, y1 = box
    half = np.array([(x1 - x0) / 2, (y1 - y0) / 2]) * scale
    cos, sin = math.cos(angle), math.sin(angle)
    rotate = np.array([[cos, -sin], [sin, cos]])
    matrix = rotate * half[None, :]
    if mirror:
        matrix = matrix @ np.diag([-1.0, 1.0])
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2]) + 2 * half * np.asarray(shift)
    return matrix, centre


def crop_clips(frames: torch.Tensor, matrices: torch.Tensor, centres: torch.Tensor,
               frame_size: tuple[float, float], size: int) -> torch.Tensor:
    """A batch of clips cut to their crops: frames (N, T, H, W, 3) uint8 covering the pose
    frame `frame_size` (width, height), `crop_transform` matrices (N, 2, 2) and centres (N, 2)
    -> (N, 3, T, size, size) float32, bilinear, zeros outside the frame, normalised with the
    ImageNet statistics. One `grid_sample` call for every frame of every clip."""
    n, t = frames.shape[:2]
    width, height = frame_size
    # grid_sample works in normalised frame coordinates: p / size * 2 - 1 per axis.
    norm = torch.tensor([2 / width, 2 / height], dtype=torch.float64)
    theta = torch.cat([matrices.double() * norm[None, :, None],
                       (centres.double() * norm - 1)[..., None]], dim=2).float()  # (N, 2, 3)
    images = frames.flatten(0, 1).permute(0, 3, 1, 2).float() / 255  # (N*T, 3, H, W)
    grid = functional.affine_grid(theta.repeat_interleave(t, dim=0), [n * t, 3, size, size],
                                  align_corners=False)
    crop = functional.grid_sample(images, grid, mode="bilinear", padding_mode="zeros",
                                  align_corners=False)
    mean = torch.tensor(RGB_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(RGB_STD).view(1, 3, 1, 1)
    crop = ((crop - mean) / std).unflatten(0, (n, t))  # (N, T, 3, S, S)
    return crop.permute(0, 2, 1, 3, 4).contiguous()


class VideoFeeder(TorchDataset):
    """Samples of one split as {"rgb": (3, T, S, S), "heatmap": (V, T', s, s)} float32
    tensors (the modalities set), label, index."""

    def __init__(self, frames: FrameCache | None, pose: PoseArrays, labels: np.ndarray,
                 config: VideoConfig, frame_size: tuple[int, int], train: bool,
                 seed: int = 0, test_clips: int = 1) -> None:
        self.frames, self.config, self.train, self.seed = frames, config, train, seed
        if int(test_clips) < 1:
            raise SlrbenchError(f"test_protocol.clips: found {test_clips}; expected >= 1")
        self.test_clips = int(test_clips)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.lengths = np.asarray(pose.lengths)
        if len(self.labels) != len(self.lengths):
            raise SlrbenchError(f"video feeder: {len(self.labels)} labels for "
                                f"{len(self.lengths)} pose clips; expected one per clip")
        self.layout = get_layout(config.layout)
        keypoints = convert(pose.data, pose.layout, self.layout.name).astype(np.float32)
        if config.zeroed_joints:  # coordinates and scores: a zero score draws no blob
            keypoints[..., list(config.zeroed_joints), :] = 0.0
        self.keypoints = keypoints  # (N, T, V, 3) frame pixels
        self.frame_size = (float(frame_size[0]), float(frame_size[1]))
        self.boxes = [pose_box(keypoints[i, :max(1, n), :, :2], keypoints[i, :max(1, n), :, 2],
                               padding=config.box_padding) for i, n in enumerate(self.lengths)]
        self.epoch = 0
        self.modalities: tuple[str, ...] = VIDEO_MODALITIES if frames is not None else (
            "heatmap",)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def set_modalities(self, names: tuple[str, ...]) -> None:
        unknown = [n for n in names if n not in VIDEO_MODALITIES]
        if unknown or not names:
            raise SlrbenchError(f"modalities: found {list(names)}; expected some of "
                                f"{', '.join(VIDEO_MODALITIES)}")
        if "rgb" in names and self.frames is None:
            raise SlrbenchError("modalities: rgb asked of a pipeline without decoded frames; "
                                "expected a dataset with the rgb modality")
        self.modalities = tuple(names)

    def __len__(self) -> int:
        return len(self.labels)

    def _rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([self.seed, self.epoch, index]))

    def _transform(self, index: int, rng: np.random.Generator | None
                   ) -> tuple[np.ndarray, np.ndarray, bool]:
        aug = self.config.augment
        if rng is None:
            return (*crop_transform(self.boxes[index]), False)
        mirror = bool(rng.random() < aug.flip_prob)
        return (*crop_transform(self.boxes[index], float(rng.uniform(*aug.scale)),
                                math.radians(float(rng.uniform(-1, 1) * aug.rotation_deg)),
                                tuple(rng.uniform(-aug.shift, aug.shift, 2)), mirror), mirror)

    def __getitem__(self, index: int) -> tuple[dict[str, torch.Tensor], int, int]:
        """Training: one augmented clip per modality, (C, T, H, W). Evaluation: `test_clips`
        unaugmented clips stacked, (clips, C, T, H, W): one clip takes every segment's middle
        frame, several draw their frames with fixed generators (pyskl's seed 255)."""
        index = int(index)
        if self.train:
            return self._sample(index, self._rng(index), augment=True), int(
                self.labels[index]), index
        clips = [self._sample(index, None if self.test_clips == 1 else np.random.default_rng(
            np.random.SeedSequence([TEST_SEED, clip, index])), augment=False)
            for clip in range(self.test_clips)]
        stacked = {name: torch.stack([c[name] for c in clips]) for name in clips[0]}
        return stacked, int(self.labels[index]), index

    def _sample(self, index: int, rng: np.random.Generator | None,
                augment: bool) -> dict[str, torch.Tensor]:
        matrix, centre, mirror = self._transform(index, rng if augment else None)
        sample: dict[str, torch.Tensor] = {}
        if "rgb" in self.modalities:
            sample["rgb"] = self._rgb(index, matrix, centre, rng)
        if "heatmap" in self.modalities:
            sample["heatmap"] = self._heatmap(index, matrix, centre, mirror, rng)
        return sample

    def _rgb(self, index: int, matrix: np.ndarray, centre: np.ndarray,
             rng: np.random.Generator | None) -> torch.Tensor:
        assert self.frames is not None
        cfg = self.config
        clip = self.frames.clip(index)  # (F, H, W, 3) uint8, decoded once
        picked = clip[uniform_indices(len(clip), cfg.rgb_frames, rng)]
        return crop_clips(torch.from_numpy(np.ascontiguousarray(picked))[None],
                          torch.as_tensor(matrix)[None], torch.as_tensor(centre)[None],
                          self.frame_size, cfg.rgb_size)[0]

    def _heatmap(self, index: int, matrix: np.ndarray, centre: np.ndarray, mirror: bool,
                 rng: np.random.Generator | None) -> torch.Tensor:
        cfg = self.config
        n = max(1, int(self.lengths[index]))
        points = self.keypoints[index, uniform_indices(n, cfg.pose_frames, rng)]  # (T, V, 3)
        if mirror:  # channel c stays joint c: take the mirror joint's point
            points = points[:, list(self.layout.mirror)]
        crop = (points[..., :2] - centre) @ np.linalg.inv(matrix).T  # frame px -> [-1, 1]²
        size = cfg.heatmap_size
        pixels = (crop + 1) * size / 2 - 0.5  # pixel centres at integers, as grid_sample
        maps = joint_heatmaps(pixels[:, None], points[:, None, :, 2], (size, size), cfg.heatmap)
        return torch.from_numpy(np.ascontiguousarray(maps.transpose(1, 0, 2, 3)))  # (V, T, s, s)
