"""RGB frames rendered from the same 3-D body as the pose: vectorised numpy, batched over frames.

Every body part is a signed distance field (capsules for limbs and finger bones, ellipses for
the head, convex polygons for the torso and palms) turned into a soft-edged coverage mask and
painted back to front: background with clutter, torso, neck, head and face, then the two arms
ordered by depth, each with its hand (finger bones behind the palm first, the palm, then finger
bones in front of it). Lighting drifts over the clip (brightness, colour temperature, a moving
side light) and sensor noise is added. Hands are evaluated on small per-frame patches only.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache, partial

import numpy as np

from . import layout as L
from .config import SynthSignConfig
from .motion import Motion

_F32 = np.float32


class _Canvas:
    """Pixel-centre coordinates of a batch of frames, broadcastable to (F, H, W): the whole
    frame, a fixed window of it, or per-frame patches."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x = x.astype(_F32)
        self.y = y.astype(_F32)

    @classmethod
    def full(cls, size: int) -> _Canvas:
        r = np.arange(size, dtype=_F32) + 0.5
        return cls(r[None, None, :], r[None, :, None])


def _window(size: int, pts: np.ndarray, margin: float) -> tuple[slice, slice, _Canvas] | None:
    """The image window (rows, cols, canvas) covering `pts` (..., 2) +- margin over all frames,
    so small shapes are not evaluated on the whole frame; None if it is empty."""
    p = pts.reshape(-1, 2)
    x0 = int(np.clip(np.floor(p[:, 0].min() - margin), 0, size))
    x1 = int(np.clip(np.ceil(p[:, 0].max() + margin), 0, size))
    y0 = int(np.clip(np.floor(p[:, 1].min() - margin), 0, size))
    y1 = int(np.clip(np.ceil(p[:, 1].max() + margin), 0, size))
    if x1 <= x0 or y1 <= y0:
        return None
    c = _Canvas(np.arange(x0, x1, dtype=_F32)[None, None, :] + 0.5,
                np.arange(y0, y1, dtype=_F32)[None, :, None] + 0.5)
    return slice(y0, y1), slice(x0, x1), c


def _capsule(c: _Canvas, a: np.ndarray, b: np.ndarray, ra: np.ndarray | float,
             rb: np.ndarray | float | None = None) -> tuple[np.ndarray, np.ndarray | np.float32]:
    """SDF (F, H, W) of a tapered capsule a->b (a, b: (F, 2); radii in pixels) and the local
    radius (for shading)."""
    ax, ay = a[:, 0, None, None].astype(_F32), a[:, 1, None, None].astype(_F32)
    bx, by = (b[:, 0] - a[:, 0])[:, None, None].astype(_F32), \
        (b[:, 1] - a[:, 1])[:, None, None].astype(_F32)
    px, py = c.x - ax, c.y - ay
    bb = np.maximum(bx * bx + by * by, 1e-6)
    h = np.clip((px * bx + py * by) / bb, 0.0, 1.0)
    dx, dy = px - h * bx, py - h * by
    ra_ = np.asarray(ra, _F32).reshape(-1, 1, 1) if np.ndim(ra) else _F32(ra)
    if rb is None:
        r = ra_
    else:
        rb_ = np.asarray(rb, _F32).reshape(-1, 1, 1) if np.ndim(rb) else _F32(rb)
        r = ra_ + (rb_ - ra_) * h
    return np.sqrt(dx * dx + dy * dy) - r, r


def _ellipse(c: _Canvas, centre: np.ndarray, rx: np.ndarray | float, ry: np.ndarray | float,
             angle: np.ndarray | float = 0.0) -> np.ndarray:
    """Approximate SDF of a rotated ellipse (good near the boundary, which is what matters)."""
    cx, cy = centre[:, 0, None, None].astype(_F32), centre[:, 1, None, None].astype(_F32)
    ca = np.cos(np.asarray(angle, _F32)).reshape(-1, 1, 1)
    sa = np.sin(np.asarray(angle, _F32)).reshape(-1, 1, 1)
    px, py = c.x - cx, c.y - cy
    u = px * ca + py * sa
    v = -px * sa + py * ca
    rx_ = np.asarray(rx, _F32).reshape(-1, 1, 1)
    ry_ = np.asarray(ry, _F32).reshape(-1, 1, 1)
    k = np.sqrt((u / rx_) ** 2 + (v / ry_) ** 2)
    return (k - 1.0) * np.minimum(rx_, ry_)


def _polygon(c: _Canvas, verts: np.ndarray) -> np.ndarray:
    """SDF (exact inside, approximate outside) of convex polygons `verts` (F, n, 2), either
    winding."""
    v = verts.astype(_F32)
    vn = np.roll(v, -1, axis=1)
    e = vn - v  # edges
    area = (v[:, :, 0] * vn[:, :, 1] - vn[:, :, 0] * v[:, :, 1]).sum(1)
    sign = np.where(area >= 0, 1.0, -1.0).astype(_F32)[:, None]
    # Outward edge normals whatever the winding (the sign of the area says which way round).
    nx, ny = e[:, :, 1] * sign, -e[:, :, 0] * sign
    norm = np.maximum(np.sqrt(nx * nx + ny * ny), 1e-6)
    nx, ny = nx / norm, ny / norm
    d = None
    for i in range(v.shape[1]):
        di = ((c.x - v[:, i, 0, None, None]) * nx[:, i, None, None]
              + (c.y - v[:, i, 1, None, None]) * ny[:, i, None, None])
        d = di if d is None else np.maximum(d, di)
    assert d is not None  # a polygon has vertices
    return d


def _alpha(sdf: np.ndarray, aa: float) -> np.ndarray:
    return np.clip(0.5 - sdf / aa, 0.0, 1.0)


def _paint(img: np.ndarray, sdf: np.ndarray, colour: np.ndarray, aa: float,
           rim: np.ndarray | float | np.float32 | None = None, rim_dark: float = 0.35) -> None:
    """Composite a shape in place; `rim` (pixels) darkens a band inside the edge (shading and
    outlines that separate overlapping parts)."""
    a = _alpha(sdf, aa)
    col: np.ndarray = np.asarray(colour, _F32)
    if rim is not None:
        inner = np.clip(-sdf / np.maximum(rim, 0.5), 0.0, 1.0)
        shade = (1.0 - rim_dark) + rim_dark * np.sqrt(inner)
        col = shade[..., None] * col
    img += a[..., None] * (col - img)


# ------------------------------------------------------------------------------------------
# Scene (background, clutter, lighting)


@lru_cache(maxsize=64)
def _scene_background(size: int, scene_seed: int, clutter: int) -> np.ndarray:
    """(size, size, 3) float background of one signer's room: a wall gradient and clutter.
    Cached (read-only) because every clip of a signer shares it."""
    rng = np.random.default_rng(scene_seed)
    ys, _xs = np.mgrid[0:size, 0:size].astype(_F32) + 0.5
    t = ys / size
    top, bottom = rng.uniform(0.25, 0.85, 3), rng.uniform(0.2, 0.75, 3)
    img = (top * (1 - t[..., None]) + bottom * t[..., None]).astype(_F32)
    c = _Canvas.full(size)
    aa = max(size / 128.0, 0.75)
    for _ in range(clutter):
        kind = rng.integers(3)
        col = rng.uniform(0.05, 0.95, 3)
        cx, cy = rng.uniform(0, 1, 2) * size
        w, h = rng.uniform(0.05, 0.30, 2) * size
        if kind == 0:  # rectangle: frames, shelves, posters
            verts = np.array([[[cx - w, cy - h], [cx + w, cy - h], [cx + w, cy + h],
                               [cx - w, cy + h]]])
            sdf = _polygon(c, verts)
            _paint(img[None], sdf, col, aa, rim=0.15 * min(w, h), rim_dark=0.4)
        elif kind == 1:  # ellipse: lamps, plants, clocks
            sdf = _ellipse(c, np.array([[cx, cy]]), w * 0.6, h * 0.6)
            _paint(img[None], sdf, col, aa)
        else:  # thin bar: cables, door frames, table edges
            a = np.array([[cx - w, cy - h]])
            b = np.array([[cx + w, cy + h * rng.uniform(-1, 1)]])
            sdf, _ = _capsule(c, a, b, 0.012 * size + 0.02 * size * rng.random())
            _paint(img[None], sdf, col, aa)
    # Slight wall texture so the background is not flat colour.
    img += rng.normal(0, 0.015, (size, size, 1)).astype(_F32)
    img.setflags(write=False)
    return img


def _lighting(t: np.ndarray, size: int, rng: np.random.Generator, amount: float
              ) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame multiplicative light (F, size, size, 3)-broadcastable gain and its parts:
    global brightness drift, colour-temperature drift, a slowly moving side light."""
    f1, f2, f3 = rng.uniform(0.2, 0.9, 3)
    p1, p2, p3 = rng.uniform(0, 2 * np.pi, 3)
    base = rng.uniform(0.85, 1.1)
    bright = base * (1 + amount * (0.6 * np.sin(2 * np.pi * f1 * t + p1)
                                   + 0.4 * np.sin(2 * np.pi * 2.3 * f2 * t + p2)))
    warm = 0.3 * amount * np.sin(2 * np.pi * f2 * t + p3)
    tint = np.stack([1 + warm, np.ones_like(warm), 1 - warm], -1)  # (F, 3)
    side = amount * 0.8 * np.sin(2 * np.pi * f3 * t + p1 + p2)  # (F,)
    xs = (np.arange(size, dtype=_F32) + 0.5) / size - 0.5
    gain = (bright[:, None, None, None] * tint[:, None, None, :]
            * (1 + side[:, None, None, None] * xs[None, None, :, None]))
    return gain.astype(_F32), bright


# ------------------------------------------------------------------------------------------
# The signer


def _hand_layers(img: np.ndarray, pts: np.ndarray, depth: np.ndarray, px_m: float,
                 hand_scale: float, skin: np.ndarray, aa: float) -> None:
    """Paint one hand (pts (F, 21, 2) pixels, depth (F, 21) z in metres) on small per-frame
    patches of `img` (F, H, W, 3), in place."""
    F, H, W, _ = img.shape
    r_f = 0.0085 * hand_scale * px_m  # finger radius in pixels
    span = 0.17 * hand_scale * px_m * 1.2  # centre to fingertip/thumb tip, with perspective
    P = int(np.ceil(2 * span + 4 * r_f + 4))
    centre = pts[:, [0, 9]].mean(1)  # between wrist and middle MCP
    pad = P + 2
    # Patch origins, kept inside the padded canvas (a hand far outside the frame is invisible
    # anyway; clipping keeps patch pixels and their coordinates consistent).
    x0 = np.clip(np.floor(centre[:, 0] - P / 2).astype(int), -pad, W + pad - P)
    y0 = np.clip(np.floor(centre[:, 1] - P / 2).astype(int), -pad, H + pad - P)
    gx = x0[:, None, None] + np.arange(P)[None, None, :] + 0.5
    gy = y0[:, None, None] + np.arange(P)[None, :, None] + 0.5
    c = _Canvas(gx, gy)
    canvas = np.pad(img, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    rows = (y0 + pad)[:, None] + np.arange(P)[None]
    cols = (x0 + pad)[:, None] + np.arange(P)[None]
    fi = np.arange(F)[:, None, None]
    patch = canvas[fi, rows[:, :, None], cols[:, None, :]].copy()  # (F, P, P, 3)

    bones = [(1, 2), (2, 3), (3, 4)] + [(b + j, b + j + 1) for b in (5, 9, 13, 17)
                                          for j in range(3)]
    radii = np.array([1.25, 1.15, 1.05] + [1.0, 0.92, 0.85] * 4) * r_f
    palm_z = depth[:, [0, 5, 17]].mean(1)
    sdf_b, sdf_f = None, None
    for (i, j), r in zip(bones, radii):
        d, _ = _capsule(c, pts[:, i], pts[:, j], r, r * 0.92)
        front = ((depth[:, i] + depth[:, j]) / 2 >= palm_z - 0.004)[:, None, None]
        inf = np.float32(1e6)
        db, df = np.where(front, inf, d), np.where(front, d, inf)
        sdf_b = db if sdf_b is None else np.minimum(sdf_b, db)
        sdf_f = df if sdf_f is None else np.minimum(sdf_f, df)
    palm = _polygon(c, pts[:, [0, 1, 5, 9, 13, 17]]) - 1.2 * r_f
    wrist, _ = _capsule(c, pts[:, 0], pts[:, 0] + (pts[:, 0] - pts[:, 9]) * 0.25, 1.9 * r_f)
    palm = np.minimum(palm, wrist)
    skin = np.asarray(skin, _F32)
    assert sdf_b is not None and sdf_f is not None  # `bones` is not empty
    _paint(patch, sdf_b, skin * 0.92, aa, rim=0.5 * r_f, rim_dark=0.45)
    _paint(patch, palm, skin, aa, rim=1.2 * r_f, rim_dark=0.3)
    _paint(patch, sdf_f, skin, aa, rim=0.5 * r_f, rim_dark=0.45)
    canvas[fi, rows[:, :, None], cols[:, None, :]] = patch
    img[:] = canvas[:, pad:pad + H, pad:pad + W]


class _Painter:
    """Paints shapes on a batch of frames, each evaluated only on the window it can touch."""

    def __init__(self, img: np.ndarray, aa: float) -> None:
        self.img = img  # (F, H, W, 3) float32, modified in place
        self.size = img.shape[1]
        self.aa = aa

    def __call__(self, pts: np.ndarray, margin: float,
                 sdf_fn: Callable[[_Canvas],
                                  np.ndarray | tuple[np.ndarray, np.ndarray | np.float32]],
                 colour: np.ndarray, rim: float | str | None = None, rim_dark: float = 0.35
                 ) -> None:
        """`pts` (F, k, 2) bound the shape (with `margin` pixels); `sdf_fn(canvas)` returns
        the SDF, or (SDF, local radius) for capsules whose rim follows the radius."""
        w = _window(self.size, pts, margin + 2 * self.aa)
        if w is None:
            return
        rows, cols, c = w
        out = sdf_fn(c)
        sdf, local_r = out if isinstance(out, tuple) else (out, None)
        rim_v = local_r if (rim == "radius" and local_r is not None) else rim
        assert not isinstance(rim_v, str)  # rim="radius" needs an sdf_fn that returns a radius
        _paint(self.img[:, rows, cols], sdf, colour, self.aa, rim_v, rim_dark)


def _draw_arm(paint: _Painter, side: int, p2: np.ndarray, z: np.ndarray, px_m: float,
              hand_scale: float, skin: np.ndarray, arm_col: np.ndarray, fore_col: np.ndarray
              ) -> None:
    """Upper arm, forearm (sleeve or skin) and hand of one side (0 = left), in place."""
    sh_i, el_i, wr_i = ((L.L_SHOULDER, L.L_ELBOW, L.L_WRIST) if side == 0
                        else (L.R_SHOULDER, L.R_ELBOW, L.R_WRIST))
    r_up, r_el, r_wr = 0.052 * px_m, 0.042 * px_m, 0.028 * px_m
    paint(p2[:, [sh_i, el_i]], r_up, lambda c: _capsule(c, p2[:, sh_i], p2[:, el_i], r_up, r_el),
          arm_col, rim="radius")
    paint(p2[:, [el_i, wr_i]], r_el, lambda c: _capsule(c, p2[:, el_i], p2[:, wr_i], r_el, r_wr),
          fore_col, rim="radius")
    base = L.LEFT_HAND if side == 0 else L.RIGHT_HAND
    _hand_layers(paint.img, p2[:, base:base + 21], z[:, base:base + 21], px_m, hand_scale, skin,
                 paint.aa)


def render_clip(motion: Motion, frames: np.ndarray, size: int, cfg: SynthSignConfig,
                rng: np.random.Generator) -> np.ndarray:
    """(F, size, size, 3) uint8 frames `frames` (indices into the clip) of `motion`."""
    s = motion.signer
    cam = motion.camera.scaled((size, size))
    kp3 = motion.keypoints3d[frames]
    p2 = cam.project(kp3)  # (F, 133, 2)
    z = kp3[..., 2]
    px_m = cam.px_per_m
    aa = max(size / 128.0, 0.75)  # edge softness in pixels: anti-aliasing at every size

    look = np.random.default_rng(s.scene_seed + 1)
    long_sleeves = bool(look.random() < 0.6)
    shirt = np.asarray(s.shirt, _F32)
    skin = np.asarray(s.skin, _F32)
    hair = np.asarray(s.hair, _F32)

    img = np.broadcast_to(_scene_background(size, s.scene_seed, int(cfg.clutter)),
                          (len(frames), size, size, 3)).copy()
    paint = _Painter(img, aa)

    # Torso: a rounded quadrilateral from the shoulders down past the hips.
    ls, rs = p2[:, L.L_SHOULDER], p2[:, L.R_SHOULDER]
    lh, rh = p2[:, L.L_HIP], p2[:, L.R_HIP]
    r_sh = 0.06 * px_m
    down = (lh + rh) / 2 - (ls + rs) / 2
    width_dir = (ls - rs) / np.maximum(np.linalg.norm(ls - rs, axis=-1, keepdims=True), 1e-6)
    torso = np.stack([ls - 0.4 * r_sh * width_dir + 0.5 * r_sh * np.array([0, 1]),
                      rs + 0.4 * r_sh * width_dir + 0.5 * r_sh * np.array([0, 1]),
                      rh + 0.3 * down, lh + 0.3 * down], 1)
    paint(torso, r_sh, lambda c: _polygon(c, torso) - r_sh, shirt, rim=3 * r_sh)

    # Neck and head. The head centre is between the ears (see face.py).
    ears = p2[:, [L.L_EAR, L.R_EAR]]
    roll = np.arctan2(ears[:, 0, 1] - ears[:, 1, 1], ears[:, 0, 0] - ears[:, 1, 0])
    up = np.stack([np.sin(roll), -np.cos(roll)], -1)  # head "up" in the image
    hs = s.head_scale * px_m  # metres -> pixels at this signer's head scale
    head_c = ears.mean(1) - up * 0.012 * hs
    neck = np.stack([(ls + rs) / 2 - up * 0.01 * px_m, head_c - up * 0.05 * hs], 1)
    paint(neck, 0.05 * hs, lambda c: _capsule(c, neck[:, 0], neck[:, 1], 0.048 * hs),
          skin * 0.85, rim="radius", rim_dark=0.3)
    hb = head_c[:, None]
    paint(hb, 0.14 * hs, lambda c: _ellipse(c, head_c + up * 0.012 * hs, 0.090 * hs,
                                            0.122 * hs, roll), hair)
    paint(hb, 0.13 * hs, lambda c: _ellipse(c, head_c - up * 0.01 * hs, 0.078 * hs, 0.112 * hs,
                                            roll), skin, rim=0.05 * hs, rim_dark=0.25)
    paint(hb + up[:, None] * 0.085 * hs, 0.09 * hs,
          lambda c: _ellipse(c, head_c + up * 0.085 * hs, 0.080 * hs, 0.042 * hs, roll), hair)
    face = p2[:, L.FACE:L.FACE + 68]
    feat = max(0.5, 0.006 * hs)
    for eye in (slice(36, 42), slice(42, 48)):
        ec = face[:, eye].mean(1)
        paint(ec[:, None], 0.012 * hs,
              partial(_ellipse, centre=ec, rx=0.011 * hs, ry=0.006 * hs, angle=roll),
              np.full(3, 0.95))
        paint(ec[:, None], 0.006 * hs, partial(_ellipse, centre=ec, rx=0.0055 * hs, ry=0.0055 * hs),
              hair * 0.4)
    for a, b in ((17, 21), (22, 26)):
        paint(face[:, [a, b]], feat, partial(_capsule, a=face[:, a], b=face[:, b], ra=0.7 * feat),
              hair * 0.7)
    paint(face[:, [27, 30]], feat, lambda c: _capsule(c, face[:, 27], face[:, 30], 0.9 * feat),
          skin * 0.82)
    mouth_c = face[:, [48, 54, 51, 57]].mean(1)
    mw = np.linalg.norm(face[:, 54] - face[:, 48], axis=-1) / 2 + 0.3 * feat
    mh = np.linalg.norm(face[:, 57] - face[:, 51], axis=-1) / 2 + 0.3 * feat
    lips = skin * np.array([0.75, 0.45, 0.45], _F32)
    paint(face[:, 48:60], feat, lambda c: _ellipse(c, mouth_c, mw, mh, roll), lips)
    ih = np.linalg.norm(face[:, 66] - face[:, 62], axis=-1) / 2
    open_ = ih > 0.25 * feat
    if open_.any():
        def inner(c: _Canvas) -> np.ndarray:
            d = _ellipse(c, mouth_c, 0.8 * mw, np.maximum(ih, 0.1), roll)
            return np.where(open_[:, None, None], d, np.float32(1e6))
        paint(face[:, 48:60], feat, inner, np.array([0.25, 0.08, 0.08], _F32))

    # Arms with hands, farther arm first (per frame).
    hand_z = z[:, [L.LEFT_HAND, L.RIGHT_HAND]]  # wrist depth per side
    arm_col = shirt * 0.92
    fore_col = shirt * 0.92 if long_sleeves else skin * 0.95
    left_first = hand_z[:, 0] <= hand_z[:, 1]
    for order, mask in (((0, 1), left_first), ((1, 0), ~left_first)):
        if not mask.any():
            continue
        sub = _Painter(img[mask], aa)
        for side in order:
            _draw_arm(sub, side, p2[mask], z[mask], px_m, s.hand_scale, skin, arm_col, fore_col)
        img[mask] = sub.img

    # Lighting drift and sensor noise.
    t = motion.t_video[frames]
    gain, _ = _lighting(t, size, rng, cfg.lighting_variation)
    img *= gain
    img += rng.normal(0.0, cfg.pixel_noise / 255.0, img.shape).astype(_F32)
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
