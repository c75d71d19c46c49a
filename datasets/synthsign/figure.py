"""A sanity figure: for a few samples, the detected skeleton, the rendered RGB frames (with the
same skeleton overlaid, to show both come from one body) and the two wrist IMUs."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from . import layout as L
from .dataset import RGB_SIZE, SynthSign

_HAND_COLOURS = {L.LEFT_HAND: "tab:green", L.RIGHT_HAND: "tab:red"}


def _draw_skeleton(ax: plt.Axes, kp: np.ndarray, scale: float = 1.0, lw: float = 1.2,
                   alpha: float = 1.0) -> None:
    """kp (133, 3) x, y, score; points with score 0 (undetected) are skipped."""
    xy, sc = kp[:, :2] * scale, kp[:, 2]

    def seg(a: int, b: int, colour: str, width: float) -> None:
        if sc[a] > 0 and sc[b] > 0:
            ax.plot(xy[[a, b], 0], xy[[a, b], 1], "-", color=colour, lw=width, alpha=alpha,
                    solid_capstyle="round")

    for a, b in L.BODY_BONES:
        # Weak (lower-body) points are drawn faintly, as a detector's output would be used.
        weak = min(sc[a], sc[b]) < 0.3
        seg(a, b, "lightsteelblue" if weak else "tab:blue", lw * (0.6 if weak else 1.0))
    for base, colour in _HAND_COLOURS.items():
        for a, b in L.HAND_BONES:
            seg(base + a, base + b, colour, lw * 0.6)
    face = L.FACE_IDX[sc[L.FACE_IDX] > 0]
    ax.scatter(xy[face, 0], xy[face, 1], s=1.0 * scale, c="k", alpha=alpha, linewidths=0)


def rgb_note(size: int) -> str:
    """The figure title's word on the RGB panels: the size methods read, or that it differs."""
    if size == RGB_SIZE:
        return f"RGB {size}x{size} px as methods read it"
    return f"RGB rendered at {size}x{size} px for this figure (methods read {RGB_SIZE}x{RGB_SIZE})"


def plot_samples(ds: SynthSign, path: str | Path, n: int = 3, split: str = "train",
                 frames: int = 4, size: int = RGB_SIZE, seed: int = 0) -> Path:
    """Save a PNG with `n` samples of `split` (random, reproducible by `seed`); the RGB panels
    are rendered at `size` (default: the size `rgb()` gives methods)."""
    path = Path(path)
    pose = ds.pose(split)
    sensor = ds.sensor(split)
    labels = ds.labels(split)
    ids = ds.ids(split)
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(ids), size=min(n, len(ids)), replace=False)
    w, h = ds.config.frame_size
    # pose frames | RGB frames | a gap | the IMU panels (three columns wide)
    ratios = [1.0] * (2 * frames) + [0.45, 1.0, 1.0, 1.0]
    fig = plt.figure(figsize=(1.75 * len(ratios), 2.3 * len(picks) + 0.4))
    grid = fig.add_gridspec(len(picks) * 2, len(ratios), width_ratios=ratios, hspace=0.7,
                            wspace=0.08)
    imu_columns = slice(2 * frames + 1, None)
    for r, i in enumerate(picks):
        length = int(pose.lengths[i])
        idx = ds.frame_indices(length, frames)
        motion = ds.motion(split, int(i))
        rgb = ds.render_sample(split, int(i), size=size, frames=frames, motion=motion)
        ci = ds.classes[int(labels[i])]
        sg = motion.signer
        title = (f"{ids[i]}  '{ci.gloss}' ({ci.cluster})  hs={ci.handshape_dominant}"
                 f"{'/' + ci.handshape_nondominant if ci.handshape_nondominant else ''} "
                 f"loc={ci.location} mov={ci.movement} ori={ci.orientation} "
                 f"{ci.symmetry} x{ci.repetitions}  signer {sg.id} "
                 f"{'left' if sg.left_handed else 'right'}-dominant  T={length}")
        for j, f in enumerate(idx):
            ax = fig.add_subplot(grid[2 * r:2 * r + 2, j])
            _draw_skeleton(ax, pose.data[i, f])
            ax.set_xlim(0, w)
            ax.set_ylim(h, 0)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"pose t={f}", fontsize=7)
            if j == 0:
                ax.text(0, -0.18 * h, title, fontsize=8, ha="left", va="bottom")
            ax = fig.add_subplot(grid[2 * r:2 * r + 2, frames + j])
            ax.imshow(rgb[j], extent=(0, size, size, 0))
            _draw_skeleton(ax, pose.data[i, f], scale=size / w, lw=0.7, alpha=0.55)
            ax.set_xlim(0, size)
            ax.set_ylim(size, 0)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"rgb t={f} + pose", fontsize=7)
        n_imu = int(sensor.lengths[i])
        t_imu = np.arange(n_imu) / sensor.rate_hz
        data = sensor.data[i, :n_imu]
        for k, (name, rows) in enumerate((("acc (m/s²)", (0, 6)), ("gyro (rad/s)", (3, 9)))):
            ax = fig.add_subplot(grid[2 * r + k, imu_columns])
            for side, base in (("L", rows[0]), ("R", rows[1])):
                for a, colour in zip(range(3), ("tab:red", "tab:green", "tab:blue")):
                    ax.plot(t_imu, data[:, base + a], color=colour, lw=0.8,
                            ls="--" if side == "L" else "-",
                            label=f"{side} {'xyz'[a]}" if r == 0 else None)
            for f in idx:
                ax.axvline(f / ds.config.fps, color="0.7", lw=0.5)
            ax.set_ylabel(name, fontsize=7)
            ax.yaxis.set_label_position("right")  # away from the RGB panels
            ax.yaxis.tick_right()
            ax.tick_params(labelsize=6)
            ax.grid(alpha=0.25, lw=0.4)
            if k == 0:
                ax.set_xticklabels([])
            else:
                ax.set_xlabel("time (s); grey lines: the frames shown", fontsize=7)
            if r == 0 and k == 0:
                ax.legend(fontsize=6, ncol=6, loc="lower center", bbox_to_anchor=(0.5, 1.02),
                          frameon=False, title="wrist (L dashed, R solid) and axis",
                          title_fontsize=6)
    fig.suptitle(f"SynthSign {ds.config.preset_name} seed {ds.config.seed} ({split}): detected "
                 f"pose | {rgb_note(size)}, the same pose overlaid | wrist IMUs "
                 f"({sensor.rate_hz:g} Hz)", fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
