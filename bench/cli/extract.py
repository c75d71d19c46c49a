"""`slrbench extract-poses --videos DIR --out DIR`: MediaPipe Holistic keypoints of every video
as pose-format `.pose` files (`slrbench.datasets.pose_extraction`, docs/extras.md#extracting-poses).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from slrbench.cli.common import console
from slrbench.errors import SlrbenchError, check_range


def extract_poses(
    videos: Annotated[Path, typer.Option(help="Folder of .mp4/.avi/.mov videos (searched "
                                         "recursively), named by sample id.")],
    out: Annotated[Path, typer.Option(help="Folder for the .pose files (sub-folders kept) and "
                                      "extraction.json.")],
    refine_face: Annotated[bool, typer.Option(
        "--refine-face", help="MediaPipe's refined face mesh with irises (478 face points).")
    ] = False,
    model_complexity: Annotated[int, typer.Option(
        help="MediaPipe's pose model: 1 is the one bundled with mediapipe 0.10.21; 0 and 2 are "
        "downloaded at run time.")] = 1,
    keep_going: Annotated[bool, typer.Option(
        "--keep-going", help="Skip videos that cannot be decoded and list them at the end.")
    ] = False,
) -> None:
    """Extract MediaPipe Holistic keypoints from videos into .pose files (the `pose` extra)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from slrbench.datasets import pose_extraction as px
    from slrbench.paths import check_directory

    check_range("--model-complexity", model_complexity, 0, 2)
    px.require_modules()  # before anything else: says how to install the pose extra
    target = check_directory(out, "--out", writable=True)
    config = px.ExtractionConfig(model_complexity=model_complexity, refine_face=refine_face)
    jobs = px.plan(videos, target, config)  # every check before the first video
    with Progress(TextColumn("extracting poses"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), TextColumn("{task.description}"),
                  console=console) as bar:
        task = bar.add_task("", total=len(jobs))
        report = px.extract_all(
            jobs, config, keep_going,
            on_video=lambda video: bar.update(task, advance=1, description=video.name))
    totals = px.summary(report)
    detected = ", ".join(f"{part} {100 * share:.0f} %" for part, share in
                         totals["detected"].items())
    done = (f"{totals['videos']} videos extracted ({totals['frames']} frames, "
            f"{totals['seconds']:.1f} s, {totals['frames_per_second']:.1f} frames/s; detected "
            f"in: {detected})" if totals["videos"] else "nothing new extracted")
    kept = f"; {totals['kept']} kept from an earlier run" if totals["kept"] else ""
    console.print(Text(f"{done}{kept} -> {target}"), soft_wrap=True)
    if report.failed:
        listed = "; ".join(reason for _, reason in report.failed)  # each names its video
        raise SlrbenchError(f"{len(report.failed)} of {len(jobs)} videos could not be decoded "
                            f"and were skipped (the others were written): {listed}")
