"""What the video methods (CAMFuse, NLA-SLR) share around their networks: the dataset check,
one `VideoFeeder` per split over the dataset's decoded-frame cache (docs/formats/video.md), the
training-unit check, the input shapes, and multi-clip prediction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional

from slrbench.datasets.base import SPLITS, Dataset
from slrbench.datasets.layouts import get_layout
from slrbench.datasets.video import VideoConfig, VideoFeeder
from slrbench.errors import SlrbenchError
from slrbench.methods.base import MethodAdapter, StreamData
from slrbench.methods.skeleton_adapter import train_section


def check_video(dataset: Dataset, method: str) -> None:
    if "rgb" not in dataset.spec.modalities or not callable(getattr(dataset, "frame_cache",
                                                                    None)):
        raise SlrbenchError(
            f"--dataset {dataset.spec.name}: modalities {', '.join(dataset.spec.modalities)}; "
            f"method '{method}' expected RGB frames with keypoints (a dataset with a decoded-"
            "frame cache, docs/formats/video.md#decoded-frame-cache)")


def video_stream_data(dataset: Dataset, method: str, data_config: dict[str, Any], seed: int,
                      **evaluation: Any) -> StreamData:
    """Feeders of the three splits; `evaluation`: the val and test feeders' test protocol
    (`test_clips`, `test_windows`)."""
    check_video(dataset, method)
    data = VideoConfig.from_dict(data_config)
    frame_size = dataset.spec.frame_size or (data.decode_size, data.decode_size)
    feeders = {}
    for split in SPLITS:
        frames = dataset.frame_cache(split, data.decode_size,  # type: ignore[attr-defined]
                                     data.decode_frames)
        train = split == "train"
        feeders[split] = VideoFeeder(frames, dataset.pose(split), dataset.labels(split), data,
                                     frame_size, train=train, seed=seed,
                                     **({} if train else evaluation))
    return StreamData(train=feeders["train"], val=feeders["val"], test=feeders["test"])


def check_unit(adapter: MethodAdapter, preset: str, unit: str, expected: str) -> None:
    """A known preset, and the one training unit of a video method (its streams cannot be
    trained apart)."""
    adapter.check_preset(preset)
    if unit != expected:
        raise SlrbenchError(f"{adapter.spec.name}: training unit '{unit}'; expected '{expected}' "
                            f"(its streams {', '.join(adapter.spec.streams)} train together)")


def unit_config(adapter: MethodAdapter, preset: str, stream: str, data: dict[str, Any],
                model: Any, train_recipe: dict[str, Any]) -> dict[str, Any]:
    """The sections a video method's configuration starts with. `model`: its config object;
    the class count is left out (it comes from the dataset at build time)."""
    model_section = model.to_dict()
    model_section.pop("num_classes")
    return {"method": adapter.spec.name, "preset": preset, "stream": stream, "data": data,
            "model": model_section, "train": train_section(train_recipe)}


def input_shapes(config: dict[str, Any]) -> dict[str, list[int]]:
    """Per-sample (C, T, H, W) of the RGB and heatmap clips the pipeline yields."""
    data = config["data"]
    channels = get_layout(data["layout"]).num_nodes
    return {"rgb": [3, data["rgb_frames"], data["rgb_size"], data["rgb_size"]],
            "heatmap": [channels, data["pose_frames"], data["heatmap_size"],
                        data["heatmap_size"]]}


def clip_probabilities(logits_of: Callable[[dict[str, Tensor]], dict[str, Tensor]],
                       inputs: dict[str, Tensor]) -> dict[str, Tensor]:
    """Inputs of several test clips per sample, (N, clips, ...): every clip through the model
    at once, then per head the softmax averaged over the clips (pyskl's average_clips='prob',
    NLA-SLR's 3-crop)."""
    clips = next(iter(inputs.values())).shape[1]
    logits = logits_of({k: v.flatten(0, 1) for k, v in inputs.items()})
    return {head: functional.softmax(v.float().unflatten(0, (-1, clips)), dim=-1).mean(1)
            for head, v in logits.items()}


def log_probabilities(probs: Tensor) -> Tensor:
    """Probabilities stored as logits: their softmax is the distribution itself."""
    return torch.log(probs.clamp_min(1e-30))
