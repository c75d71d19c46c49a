"""Shared data side of the video methods (CAMFuse, NLA-SLR): the dataset check and one
`VideoFeeder` per split over the dataset's decoded-frame cache (docs/formats/video.md)."""

from __future__ import annotations

from typing import Any

from slrbench.datasets.base import SPLITS, Dataset
from slrbench.datasets.video import VideoConfig, VideoFeeder
from slrbench.errors import SlrbenchError
from slrbench.methods.base import StreamData


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
