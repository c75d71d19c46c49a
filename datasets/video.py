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
from slrbench.datasets.clips import WINDOWS, uniform_indices, window_indices
from slrbench.datasets.frame_cache import FrameCache, grid_positions
from slrbench.datasets.heatmaps import HeatmapConfig, joint_heatmaps
from slrbench.datasets.layouts import convert, get_layout
from slrbench.datasets.pose_box import pose_box
from slrbench.errors import SlrbenchError

VIDEO_MODALITIES = ("rgb", "heatmap")
# ImageNet statistics (pyskl's RGB normalisation), on 0-1 pixel values.
RGB_MEAN = (0.485, 0.456, 0.406)
RGB_STD = (0.229, 0.224, 0.225)
TEST_SEED = 255  # pyskl samples its test clips with a fixed seed


AUGMENT_MODES = ("affine", "resized_crop")
SAMPLING_MODES = ("uniform", "window")
BOX_MODES = ("pose", "frame")


@dataclass(frozen=True)
class VideoAugment:
    """Training-time geometry. `affine` (CAMFuse lists scaling, rotation and shifting): a random
    scale, rotation and shift of the crop. `resized_crop` (NLA-SLR's RandomResizedCrop): a
    sub-box of `area` of the box and aspect ratio in `aspect` (log-uniform), placed uniformly
    inside it. Either mirrors with probability `flip_prob` (off by default: a mirror turns a
    right-handed signer left-handed)."""

    scale: tuple[float, float] = (0.9, 1.1)  # of the crop side
    rotation_deg: float = 10.0  # uniform in ±rotation_deg
    shift: float = 0.05  # of the crop side, uniform in ± per axis
    flip_prob: float = 0.0
    mode: str = "affine"
    area: tuple[float, float] = (0.7, 1.0)  # resized_crop: fraction of the box area
    aspect: tuple[float, float] = (0.75, 1.3)  # resized_crop: width / height

    def __post_init__(self) -> None:
        if self.mode not in AUGMENT_MODES:
            raise SlrbenchError(f"data.augment.mode: found '{self.mode}'; expected one of "
                                f"{', '.join(AUGMENT_MODES)}")

    # The pairs travel as JSON lists in a run config and come back as tuples.
    _PAIRS = ("scale", "area", "aspect")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for name in self._PAIRS:
            data[name] = list(getattr(self, name))
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VideoAugment:
        check_fields(cls, data, "data.augment")
        values: dict[str, Any] = {k: tuple(v) if k in cls._PAIRS else v
                                  for k, v in data.items()}
        return cls(**values)


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
    # "pose": the clip's pose box (CAMFuse); "frame": the whole frame (NLA-SLR).
    box: str = "pose"
    # "uniform": pyskl's segments, RGB from the cache and heatmaps from the whole pose sequence
    # drawn apart; "window": NLA-SLR's consecutive window of the cached frames, the heatmaps
    # drawn at the same frames (pose_frames must equal rgb_frames).
    sampling: str = "uniform"
    low_frames: int | None = None  # also a consecutive sub-window of this length ("<m>_low")
    # Frames-last memory behind every (C, T, H, W) clip and channels_last_3d batches (`collate`):
    # a channels-last network (NLA-SLR's) then reads them without a layout copy. Same values.
    channels_last: bool = False

    def __post_init__(self) -> None:
        for name in ("rgb_size", "rgb_frames", "pose_frames", "heatmap_size", "decode_size",
                     "decode_frames"):
            if int(getattr(self, name)) < 1:
                raise SlrbenchError(f"data.{name}: found {getattr(self, name)}; expected a "
                                    "positive integer")
        if self.box_padding < 0:
            raise SlrbenchError(f"data.box_padding: found {self.box_padding}; expected >= 0")
        for name, value, allowed in (("box", self.box, BOX_MODES),
                                     ("sampling", self.sampling, SAMPLING_MODES)):
            if value not in allowed:
                raise SlrbenchError(f"data.{name}: found '{value}'; expected one of "
                                    f"{', '.join(allowed)}")
        if self.sampling == "window" and self.pose_frames != self.rgb_frames:
            raise SlrbenchError(f"data.pose_frames: found {self.pose_frames} with window "
                                f"sampling; expected rgb_frames ({self.rgb_frames}): one window "
                                "for both")
        if self.low_frames is not None and not 1 <= self.low_frames <= self.rgb_frames:
            raise SlrbenchError(f"data.low_frames: found {self.low_frames}; expected 1 to "
                                f"rgb_frames ({self.rgb_frames})")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["zeroed_joints"] = list(self.zeroed_joints)
        data["augment"] = self.augment.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VideoConfig:
        check_fields(cls, data, "data")
        values = dict(data)
        heatmap = dict(values.get("heatmap", {}))
        check_fields(HeatmapConfig, heatmap, "data.heatmap")
        values["heatmap"] = HeatmapConfig(**heatmap)
        values["augment"] = VideoAugment.from_dict(dict(values.get("augment", {})))
        values["zeroed_joints"] = tuple(values.get("zeroed_joints", ()))
        return cls(**values)


def crop_transform(box: tuple[float, float, float, float],
                   scale: float | tuple[float, float] = 1.0,
                   angle: float = 0.0, shift: tuple[float, float] = (0.0, 0.0),
                   mirror: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(A, c): crop coordinates q in [-1, 1]² -> frame pixels p = A q + c. The crop is the box
    (its half sides times `scale`, one factor or one per axis), rotated by `angle` (radians),
    moved by `shift` (fractions of the side) and, with `mirror`, flipped left-right."""
    x0, y0, x1, y1 = box
    half = np.array([(x1 - x0) / 2, (y1 - y0) / 2]) * np.asarray(scale, dtype=np.float64)
    cos, sin = math.cos(angle), math.sin(angle)
    rotate = np.array([[cos, -sin], [sin, cos]])
    matrix = rotate * half[None, :]
    if mirror:
        matrix = matrix @ np.diag([-1.0, 1.0])
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2]) + 2 * half * np.asarray(shift)
    return matrix, centre


def crop_clips(frames: torch.Tensor, matrices: torch.Tensor, centres: torch.Tensor,
               frame_size: tuple[float, float], size: int,
               frames_last: bool = False) -> torch.Tensor:
    """A batch of clips cut to their crops: frames (N, T, H, W, 3) uint8 covering the pose
    frame `frame_size` (width, height), `crop_transform` matrices (N, 2, 2) and centres (N, 2)
    -> (N, 3, T, size, size) float32, bilinear, zeros outside the frame, normalised with the
    ImageNet statistics. One `grid_sample` call for every frame of every clip. `frames_last`:
    the same values over (N, T, size, size, 3) memory (channels_last_3d)."""
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
    if frames_last:
        return crop.permute(0, 1, 3, 4, 2).contiguous().permute(0, 4, 1, 2, 3)
    return crop.permute(0, 2, 1, 3, 4).contiguous()


def frames_last_stack(clips: list[torch.Tensor]) -> torch.Tensor:
    """Stack clips (..., C, T, H, W) on a new first axis into frames-last memory
    (channels_last_3d once flattened to 5-D): one copy, none if the clips are frames-last."""
    return torch.stack([c.movedim(-4, -1) for c in clips]).movedim(-1, -4)


def compact(clip: torch.Tensor, frames_last: bool) -> torch.Tensor:
    """A dense copy of a (sliced) clip (..., C, T, H, W) in the pipeline's layout."""
    if frames_last:
        return clip.movedim(-4, -1).contiguous().movedim(-1, -4)
    return clip.contiguous()


class VideoFeeder(TorchDataset):
    """Samples of one split as {"rgb": (3, T, S, S), "heatmap": (V, T', s, s)} float32
    tensors (the modalities set), label, index."""

    def __init__(self, frames: FrameCache | None, pose: PoseArrays, labels: np.ndarray,
                 config: VideoConfig, frame_size: tuple[int, int], train: bool,
                 seed: int = 0, test_clips: int = 1,
                 test_windows: tuple[str, ...] = ("central",)) -> None:
        self.frames, self.config, self.train, self.seed = frames, config, train, seed
        if int(test_clips) < 1:
            raise SlrbenchError(f"test_protocol.clips: found {test_clips}; expected >= 1")
        bad = [w for w in test_windows if w not in WINDOWS[1:]]
        if bad or not test_windows:
            raise SlrbenchError(f"test_protocol.windows: found {list(test_windows)}; expected "
                                f"some of {', '.join(WINDOWS[1:])}")
        self.test_clips, self.test_windows = int(test_clips), tuple(test_windows)
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
        whole = (0.0, 0.0, *self.frame_size)
        self.boxes = [whole if config.box == "frame" else
                      pose_box(keypoints[i, :max(1, n), :, :2], keypoints[i, :max(1, n), :, 2],
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
        if aug.mode == "resized_crop":
            area = float(rng.uniform(*aug.area))
            aspect = math.exp(float(rng.uniform(math.log(aug.aspect[0]),
                                                math.log(aug.aspect[1]))))
            width = min(1.0, math.sqrt(area * aspect))  # fractions of the box side
            height = min(1.0, math.sqrt(area / aspect))
            shift = (float(rng.uniform(-1, 1)) * (1 - width) / 2,
                     float(rng.uniform(-1, 1)) * (1 - height) / 2)  # inside the box
            return (*crop_transform(self.boxes[index], (width, height), 0.0, shift, mirror),
                    mirror)
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
        if self.config.sampling == "window":  # NLA-SLR's crops: start, end, central windows
            clips = [self._sample(index, None, augment=False, where=w) for w in self.test_windows]
        else:
            clips = [self._sample(index, None if self.test_clips == 1 else np.random.default_rng(
                np.random.SeedSequence([TEST_SEED, clip, index])), augment=False)
                for clip in range(self.test_clips)]
        stack = frames_last_stack if self.config.channels_last else torch.stack
        stacked = {name: stack([c[name] for c in clips]) for name in clips[0]}
        return stacked, int(self.labels[index]), index

    def collate(self, batch: list[tuple[dict[str, torch.Tensor], int, int]]
                ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """The DataLoader's batch: inputs stacked in the pipeline's layout (channels_last_3d
        with `channels_last`), labels and indices as int64."""
        stack = frames_last_stack if self.config.channels_last else torch.stack
        inputs = {name: stack([sample[name] for sample, _, _ in batch]) for name in batch[0][0]}
        return (inputs, torch.tensor([label for _, label, _ in batch], dtype=torch.int64),
                torch.tensor([index for _, _, index in batch], dtype=torch.int64))

    def _sample(self, index: int, rng: np.random.Generator | None, augment: bool,
                where: str = "central") -> dict[str, torch.Tensor]:
        cfg = self.config
        matrix, centre, mirror = self._transform(index, rng if augment else None)
        sample: dict[str, torch.Tensor] = {}
        if cfg.sampling == "window":  # one window of the cached frames for both modalities
            picked = window_indices(cfg.decode_frames, cfg.rgb_frames, rng,
                                    "random" if rng is not None else where)
            if "rgb" in self.modalities:
                sample["rgb"] = self._rgb(index, matrix, centre, picked)
            if "heatmap" in self.modalities:
                positions = grid_positions(max(1, int(self.lengths[index])), cfg.decode_frames)
                sample["heatmap"] = self._heatmap(index, matrix, centre, mirror,
                                                  positions[picked])
            return self._with_low(sample, rng)
        if "rgb" in self.modalities:
            sample["rgb"] = self._rgb(index, matrix, centre,
                                      uniform_indices(cfg.decode_frames, cfg.rgb_frames, rng))
        if "heatmap" in self.modalities:
            n = max(1, int(self.lengths[index]))
            sample["heatmap"] = self._heatmap(index, matrix, centre, mirror,
                                              uniform_indices(n, cfg.pose_frames, rng))
        return self._with_low(sample, rng)

    def _with_low(self, sample: dict[str, torch.Tensor],
                  rng: np.random.Generator | None) -> dict[str, torch.Tensor]:
        """NLA-SLR's low-rate clip: a consecutive sub-window of every modality's clip (a random
        start in training, the central one at test)."""
        low = self.config.low_frames
        if low is None:
            return sample
        span = self.config.rgb_frames - low
        start = int(rng.integers(0, span + 1)) if rng is not None else span // 2
        for name in list(sample):
            sample[f"{name}_low"] = compact(sample[name][:, start:start + low],
                                            self.config.channels_last)
        return sample

    def _rgb(self, index: int, matrix: np.ndarray, centre: np.ndarray,
             frames: np.ndarray) -> torch.Tensor:
        """`frames`: indices into the clip's cached frames."""
        assert self.frames is not None
        cfg = self.config
        picked = self.frames.clip(index)[frames]  # (T, H, W, 3) uint8, decoded once
        return crop_clips(torch.from_numpy(np.ascontiguousarray(picked))[None],
                          torch.as_tensor(matrix)[None], torch.as_tensor(centre)[None],
                          self.frame_size, cfg.rgb_size, frames_last=cfg.channels_last)[0]

    def _heatmap(self, index: int, matrix: np.ndarray, centre: np.ndarray, mirror: bool,
                 positions: np.ndarray) -> torch.Tensor:
        """`positions`: frame indices into the clip's pose sequence."""
        cfg = self.config
        points = self.keypoints[index, positions]  # (T, V, 3)
        if mirror:  # channel c stays joint c: take the mirror joint's point
            points = points[:, list(self.layout.mirror)]
        crop = (points[..., :2] - centre) @ np.linalg.inv(matrix).T  # frame px -> [-1, 1]²
        size = cfg.heatmap_size
        pixels = (crop + 1) * size / 2 - 0.5  # pixel centres at integers, as grid_sample
        if cfg.channels_last:  # drawn (T, s, s, V): the frames-last view needs no copy
            maps = joint_heatmaps(pixels[:, None], points[:, None, :, 2], (size, size),
                                  cfg.heatmap, joints_last=True)
            return torch.from_numpy(maps).permute(3, 0, 1, 2)
        # Joints lead and frames take the place of joints: maps come out (V, T, s, s) as
        # drawn, without a transposing copy of the volume (a third of a sample's time).
        joints_first = pixels.transpose(1, 0, 2)[:, None]  # (V, 1 person, T, 2)
        maps = joint_heatmaps(joints_first, points[..., 2].T[:, None], (size, size),
                              cfg.heatmap)
        return torch.from_numpy(np.ascontiguousarray(maps))  # (V, T, s, s)
