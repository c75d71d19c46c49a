"""Reader of a folder of raw videos or frame folders, `slrbench prepare --videos DIR`
(docs/formats/video.md#a-video-folder-for-slrbench-prepare).

Every video file and every folder of frame images under DIR (searched recursively; a frame
folder's own subfolders are not) is one clip. Its sample id is its name canonicalised as every
other reader does (`canonical_id`: extensions and modality suffixes stripped), so
`signer0_sample1_color.mp4` is `signer0_sample1` and WLASL's `00335.mp4` stays the string
`00335`. Clips whose name ends in a non-colour modality (AUTSL's `_depth`) are left out: the video
methods read colour. The copy has one split, `all`, with the clip of each id and no labels:
prepare puts each id in its official split.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

from slrbench.datasets.official import canonical_id
from slrbench.datasets.sources import ReadOptions, SourceCopy, SourceSplit
from slrbench.datasets.video_io import VIDEO_SUFFIXES, frame_images, natural_key
from slrbench.errors import SlrbenchError

FORMAT = "video"
# Suffixes of clips that are not colour video (AUTSL and Kinect recordings ship depth beside it).
OTHER_MODALITY = re.compile(r"_(depth|flow|pose|skeleton)$", re.IGNORECASE)
_SKIPPED_DIRS = ("__MACOSX",)  # resource forks of zips packed on macOS


def read_videos(path: Path, options: ReadOptions) -> SourceCopy:
    """One split `all`: the colour clips under `path` by sample id, in natural id order."""
    root = Path(path)
    if not root.is_dir():
        raise SlrbenchError(f"{root}: no such folder; expected a folder of videos or frame "
                            "folders")
    clips, other_files = _clips(root)
    found: dict[str, Path] = {}
    left_out: Counter[str] = Counter()
    for clip in clips:
        stem = clip.name[:-len(clip.suffix)] if clip.is_file() else clip.name
        modality = OTHER_MODALITY.search(stem)
        if modality:
            left_out[modality.group(1).lower()] += 1
            continue
        sample_id = canonical_id(clip.name, None)
        if sample_id in found:
            raise SlrbenchError(f"{root}: two clips for sample '{sample_id}': "
                                f"{found[sample_id].relative_to(root)} and "
                                f"{clip.relative_to(root)}; expected one per sample")
        found[sample_id] = clip
    if not found:
        what = (f"only {_counts(left_out)} clips" if left_out
                else f"no videos ({', '.join(sorted(VIDEO_SUFFIXES))}) or frame folders")
        raise SlrbenchError(f"{root}: {what}; expected colour videos or frame folders "
                            f"of {options.dataset}, one per sample")
    ids = tuple(sorted(found, key=natural_key))
    videos = tuple(found[i] for i in ids)
    notes = [f"{len(ids)} colour clips under {root}"]
    if left_out:
        notes.append(f"left out {_counts(left_out)} clips (the video methods read colour)")
    if other_files:
        notes.append(f"ignored {other_files} files that are neither videos nor frame images")
    return SourceCopy(format=FORMAT, splits={"all": SourceSplit(ids, videos=videos)},
                      files=videos, notes=tuple(notes))


def _clips(root: Path) -> tuple[list[Path], int]:
    """Video files and frame folders under `root`, and the number of other files seen."""
    clips: list[Path] = []
    other = 0
    for folder, subfolders, files in os.walk(root):
        here = Path(folder)
        # Hidden files (macOS `._*` resource forks among them) are never clips.
        videos = [n for n in sorted(files)
                  if Path(n).suffix.lower() in VIDEO_SUFFIXES and not n.startswith(".")]
        # A folder of frame images is one clip, whatever it holds besides; one that also holds
        # videos is not (a stray thumbnail must not swallow a folder of videos).
        if not videos and frame_images(here):
            clips.append(here)
            subfolders.clear()
            continue
        clips.extend(here / n for n in videos)
        other += sum(1 for n in files if not n.startswith(".")) - len(videos)
        subfolders[:] = sorted(d for d in subfolders
                               if not d.startswith(".") and d not in _SKIPPED_DIRS)
    return clips, other


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{n} {kind}" for kind, n in sorted(counter.items()))
