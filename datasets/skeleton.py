"""SAM-SLR skeleton arrays and feeder
(docs/methods/samslr-pipeline.md#arrays-on-disk, #feeder-augmentation).

Offline part (``jackyjsy/CVPR21Chal-SLR`` @ de6c53a, ``SL-GCN/data_gen/sign_gendata.py``,
``gen_bone_data.py``, ``gen_motion_data.py``): select the joints, loop-pad or truncate every
sequence to a fixed length, then derive the stream **on the padded sequence** (so motion streams
see the loop seam, as upstream), stored as float32 (N, C, T, V, M=1).

Online part (``SL-GCN/feeders/feeder.py``), train order:

1. random contiguous temporal crop of ``window`` frames;
2. horizontal flip with probability ``flip_prob``: mirror permutation, then x -> W - x for joint
   streams and x -> -x for vector streams. W is the dataset's frame width (design: upstream
   hard-codes 512, which only cancels because centering follows);
3. centering: subtract the centre joint's time-mean x and y from every node (joint streams) or
   from the centre node only (vector streams, where only the bone-tree root is absolute);
   the score channel is untouched;
4. random shift: one offset ~ U[-shift, shift) for x and one for y, added to every node (joint
   streams) or to the centre node only (vector streams).

Eval: centering only.

Randomness (design): each training sample draws from its own ``numpy.random.Generator`` seeded
with ``SeedSequence([seed, epoch, index])``. Results therefore depend only on (seed, epoch,
index), not on worker count, worker assignment or iteration order. Call ``set_epoch`` before
each epoch (the shared runner does); with ``num_workers > 0`` and non-persistent workers the
attribute reaches the workers because they are re-created for every epoch.

Upstream differences kept on purpose (recorded as decisions by the adapter):
the flip happens with probability ``flip_prob`` (upstream flips when ``random() > p``, i.e.
with probability 1 - p; identical at p = 0.5); centering uses each person's own centre joint
(upstream uses person 0 for all; identical at M = 1); ``window`` longer than the stored length
is an error instead of zero padding.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
from torch.utils.data import Dataset

from slrbench.datasets.base import PoseArrays
from slrbench.datasets.layouts import KeypointLayout, convert, get_layout
from slrbench.datasets.streams import derive_stream, is_vector_stream, validate_streams
from slrbench.errors import SlrbenchError


# --------------------------------------------------------------------------------------------
# Offline arrays
# --------------------------------------------------------------------------------------------
def loop_pad_or_truncate(seq: np.ndarray, length: int, target: int) -> np.ndarray:
    """(T_max, V, C) with ``length`` valid frames -> (target, V, C).

    Shorter sequences are repeated end-to-end (frame t of the output = valid frame
    t mod length); longer ones keep their first ``target`` frames; ``length == 0`` gives zeros.
    """
    seq = np.asarray(seq)
    if seq.ndim != 3:
        raise SlrbenchError(f"sequence: shape {seq.shape}; expected (T, V, C)")
    if target < 1:
        raise SlrbenchError(f"target length: found {target}; expected >= 1")
    if not 0 <= length <= seq.shape[0]:
        raise SlrbenchError(f"length: found {length}; expected 0..{seq.shape[0]}")
    if length == 0:
        return np.zeros((target,) + seq.shape[1:], dtype=seq.dtype)
    idx = np.arange(target) % length  # identity for the first min(length, target) frames
    return seq[idx].copy()


def subsample_frames(pose: PoseArrays, step: int) -> PoseArrays:
    """Every ``step``-th frame (a lower frame rate), lengths rounded up: frame rate is a data
    choice like the stored length, recorded in the config (``data.frame_step``)."""
    if step < 1:
        raise SlrbenchError(f"data.frame_step: found {step}; expected >= 1")
    if step == 1:
        return pose
    lengths = -(-np.asarray(pose.lengths) // step)  # ceil: a started frame pair counts
    return replace(pose, data=np.ascontiguousarray(pose.data[:, ::step]), lengths=lengths)


def prepare_stream_arrays(
    pose_data: np.ndarray,
    lengths: np.ndarray,
    layout_src: str | KeypointLayout,
    layout_dst: str | KeypointLayout,
    stream: str,
    t_store: int,
) -> np.ndarray:
    """(N, T_max, V_src, C) zero-padded poses -> float32 (N, C, t_store, V_dst, 1).

    Layout conversion, loop padding to ``t_store``, then the stream derived on the padded
    sequence (SAM-SLR order: the motion streams contain the jump across the loop seam).
    """
    stream = validate_streams([stream])[0]
    src, dst = get_layout(layout_src), get_layout(layout_dst)
    pose_data = np.asarray(pose_data)
    lengths = np.asarray(lengths)
    if pose_data.ndim != 4:
        raise SlrbenchError(f"pose data: shape {pose_data.shape}; expected (N, T, V, C)")
    n = pose_data.shape[0]
    if lengths.shape != (n,):
        raise SlrbenchError(f"lengths: shape {lengths.shape}; expected ({n},)")
    joints = convert(pose_data, src.name, dst.name).astype(np.float32, copy=False)
    padded = np.empty((n, t_store) + joints.shape[2:], dtype=np.float32)
    for i in range(n):
        padded[i] = loop_pad_or_truncate(joints[i], int(lengths[i]), t_store)
    out = derive_stream(padded, stream, dst)  # (N, T, V, C)
    # (N, T, V, C) -> (N, C, T, V, M=1)
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2)[..., None], dtype=np.float32)


# --------------------------------------------------------------------------------------------
# Online augmentation (one sample, (C, T, V, M), modified in place where noted)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AugmentConfig:
    """Train-time augmentation (docs/methods/samslr-pipeline.md#feeder-augmentation).

    ``window``: frames of the random crop (None: no crop). ``frame_width``: W of the flip
    x -> W - x for joint streams; required when joint streams are flipped (the adapter passes
    the dataset's frame width). ``center``: also applied at eval.
    """

    window: int | None = None
    flip_prob: float = 0.5
    shift_px: float = 10.0
    frame_width: float | None = None
    center: bool = True

    def __post_init__(self) -> None:
        if self.window is not None and self.window < 1:
            raise SlrbenchError(f"augment.window: found {self.window}; expected >= 1 or None")
        if not 0.0 <= self.flip_prob <= 1.0:
            raise SlrbenchError(f"augment.flip_prob: found {self.flip_prob}; expected 0..1")
        if self.shift_px < 0:
            raise SlrbenchError(f"augment.shift_px: found {self.shift_px}; expected >= 0")
        if self.frame_width is not None and self.frame_width <= 0:
            raise SlrbenchError(f"augment.frame_width: found {self.frame_width}; expected > 0")

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def temporal_crop(sample: np.ndarray, window: int, rng: np.random.Generator) -> np.ndarray:
    """Random contiguous window of ``window`` frames of (C, T, V, M) (a view)."""
    t = sample.shape[1]
    if window >= t:
        return sample
    start = int(rng.integers(0, t - window + 1))
    return sample[:, start : start + window]


def horizontal_flip(
    sample: np.ndarray, mirror: tuple[int, ...], vector: bool, width: float | None
) -> np.ndarray:
    """Mirror permutation plus x -> width - x (joints) or x -> -x (vectors); a new array."""
    out = sample[:, :, list(mirror), :].copy()
    if vector:
        out[0] = -out[0]
    else:
        if width is None:
            raise SlrbenchError("augment.frame_width: found None; expected the frame width")
        out[0] = width - out[0]
    return out


def center_sample(sample: np.ndarray, center: int, vector: bool) -> np.ndarray:
    """Subtract the centre joint's time-mean x, y (per person); in place, returns ``sample``."""
    mean_xy = sample[:2, :, center, :].mean(axis=1)  # (2, M)
    if vector:
        sample[:2, :, center, :] -= mean_xy[:, None, :]
    else:
        sample[:2] -= mean_xy[:, None, None, :]
    return sample


def random_shift(
    sample: np.ndarray, shift: float, center: int, vector: bool, rng: np.random.Generator
) -> np.ndarray:
    """Add one U[-shift, shift) offset to x and one to y; in place, returns ``sample``."""
    dx, dy = rng.uniform(-shift, shift, size=2)
    nodes = slice(center, center + 1) if vector else slice(None)
    sample[0, :, nodes, :] += dx
    sample[1, :, nodes, :] += dy
    return sample


# --------------------------------------------------------------------------------------------
# Feeder
# --------------------------------------------------------------------------------------------
class SkeletonFeeder(Dataset):
    """Torch dataset over stored stream arrays (N, C, T, V, M).

    ``__getitem__`` returns ``(float32 tensor (C, T', V, M), label, index)``.
    """

    def __init__(
        self,
        data: np.ndarray,
        labels: np.ndarray,
        layout: KeypointLayout | str,
        stream: str,
        train: bool,
        aug: AugmentConfig | None = None,
        seed: int = 0,
    ) -> None:
        self.layout = get_layout(layout)
        self.stream = validate_streams([stream])[0]
        self.vector = is_vector_stream(self.stream)
        self.train = bool(train)
        self.aug = aug if aug is not None else AugmentConfig()
        self.seed = int(seed)
        self.epoch = 0
        if data.ndim != 5:
            raise SlrbenchError(f"skeleton data: shape {data.shape}; expected (N, C, T, V, M)")
        n, c, t, v, _ = data.shape
        if v != self.layout.num_nodes:
            raise SlrbenchError(
                f"skeleton data: {v} nodes; expected {self.layout.num_nodes} "
                f"for layout '{self.layout.name}'"
            )
        if c < 2:
            raise SlrbenchError(f"skeleton data: {c} channels; expected x, y[, score]")
        labels = np.asarray(labels, dtype=np.int64)
        if labels.shape != (n,):
            raise SlrbenchError(f"labels: shape {labels.shape}; expected ({n},)")
        if self.train and self.aug.window is not None and self.aug.window > t:
            raise SlrbenchError(
                f"augment.window: found {self.aug.window}; expected <= stored length {t}"
            )
        if (
            self.train
            and self.aug.flip_prob > 0
            and not self.vector
            and self.aug.frame_width is None
        ):
            raise SlrbenchError(
                "augment.frame_width: found None; expected the dataset's frame width "
                "(joint streams are flipped as x -> W - x)"
            )
        self.data = data
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draws of ``epoch`` (reproducible per (seed, epoch, index))."""
        self.epoch = int(epoch)

    def rng_for(self, index: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([self.seed, self.epoch, index]))

    def transform(self, sample: np.ndarray, index: int) -> np.ndarray:
        """Apply the pipeline to one (C, T, V, M) sample; returns a new float32 array."""
        sample = np.array(sample, dtype=np.float32)  # copy: never touch the (mem-mapped) store
        aug, lay = self.aug, self.layout
        if self.train:
            rng = self.rng_for(index)
            if aug.window is not None:
                sample = temporal_crop(sample, aug.window, rng)
            # Draw unconditionally so the shift draw does not depend on the flip outcome.
            flip = rng.random() < aug.flip_prob
            if flip:
                sample = horizontal_flip(sample, lay.mirror, self.vector, aug.frame_width)
            if aug.center:
                center_sample(sample, lay.center, self.vector)
            if aug.shift_px > 0:
                random_shift(sample, aug.shift_px, lay.center, self.vector, rng)
        elif aug.center:
            center_sample(sample, lay.center, self.vector)
        return np.ascontiguousarray(sample)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int]:
        index = int(index)
        out = self.transform(self.data[index], index)
        return torch.from_numpy(out), int(self.labels[index]), index
