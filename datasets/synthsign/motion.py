"""One sample's motion in continuous time.

A sign is planned as keyframes (rest -> location -> movement with repetitions -> back towards
rest) for both hands on a shared time grid, in a canonical frame where the dominant hand is the
right one. One C2 cubic spline through the keyframes (clamped: zero velocity at both ends)
gives wrist positions, wrist rotation vectors and handshape blend weights at ANY time, with
exact derivatives, so video (25 fps) and IMU (100 Hz) are two samplings of the same motion and
the accelerometer is the true second derivative of the wrist trajectory.

Left-dominant signers get the mirror image of the canonical sign (x -> -x, hands swapped).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.interpolate import CubicSpline

from . import layout as L
from .body import Body, Signer, arm_ik, body_of
from .camera import NOMINAL_PX_PER_M, REFERENCE_SIZE, Camera
from .config import SynthSignConfig
from .face import CHIN, FOREHEAD, NOSE, RIGHT_CHEEK, RIGHT_EAR, head_points
from .geometry import MIRROR, exp_so3, frame_from, log_so3, right_jacobian
from .hands import HAND_LENGTH, HANDSHAPES, REST_SHAPE, hand_points_local
from .phonology import ClassInfo

# Palm orientation -> (finger direction, palm normal) of a right hand in the world frame.
_ORIENTATIONS = {
    "out": ((0.15, 1.0, 0.25), (0.0, 0.0, 1.0)),
    "in": ((0.15, 1.0, 0.30), (0.0, 0.0, -1.0)),
    "down": ((0.35, 0.10, 1.0), (0.0, -1.0, 0.0)),
    "up": ((0.35, 0.10, 1.0), (0.0, 1.0, 0.0)),
    "side": ((0.10, 0.60, 1.0), (1.0, 0.0, 0.0)),
}
# A hanging hand: fingers down, palm towards the thigh (medial), thumb forward.
_REST_FRAME = frame_from(np.array([0.0, -1.0, 0.1]), np.array([1.0, 0.0, 0.0]))
# The non-dominant hand of dominant-on-base signs: flat shapes palm up, fists palm sideways.
_BASE_ORIENTATION = {"B": "up", "5": "up", "S": "side", "C": "side"}
_MIDLINE = {"neutral", "chest", "stomach", "chin", "nose", "forehead"}

GRAVITY = np.array([0.0, -9.81, 0.0])


@dataclass(frozen=True)
class Motion:
    """Noise-free motion of one sample (world frame: x = signer's left, y up, z to camera).

    Hand-indexed arrays use index 0 = anatomical LEFT, 1 = RIGHT. `wrist_rot_*` are the IMU
    orientations (columns = sensor axes in the world); `wrist_gyro` is the angular velocity in
    the sensor frame; `wrist_acc` the world linear acceleration of the wrist."""

    class_index: int
    signer_id: str
    left_handed: bool
    fps: float
    imu_rate_hz: float
    t_video: np.ndarray  # (T,)
    t_imu: np.ndarray  # (S,)
    keypoints3d: np.ndarray  # (T, 133, 3)
    keypoints2d: np.ndarray  # (T, 133, 2) noise-free projection, pixels of frame_size
    wrist_rot_video: np.ndarray  # (T, 2, 3, 3)
    wrist_pos_imu: np.ndarray  # (S, 2, 3)
    wrist_acc_imu: np.ndarray  # (S, 2, 3)
    wrist_rot_imu: np.ndarray  # (S, 2, 3, 3)
    wrist_gyro_imu: np.ndarray  # (S, 2, 3)
    hand_speed_video: np.ndarray  # (T, 2) m/s, drives motion-dependent detector noise
    camera: Camera
    keyframe_times: np.ndarray  # (K,)
    body: Body
    signer: Signer

    @property
    def n_frames(self) -> int:
        return len(self.t_video)

    @property
    def n_imu(self) -> int:
        return len(self.t_imu)


@dataclass(frozen=True)
class _Plan:
    times: np.ndarray  # (K,) keyframe times (s), strictly increasing
    values: np.ndarray  # (K, 14): pos dom, pos nd, rotvec dom, rotvec nd, weight dom, weight nd
    base_rot: np.ndarray  # (2, 3, 3) canonical base orientation [dom, nd] (right-hand frames)
    shapes: np.ndarray  # (2, 20) handshape vectors [dom, nd]
    n_frames: int
    swivel: np.ndarray  # (2,) per-hand elbow swivel (canonical)


def _location_centre(loc: str, body: Body, s: Signer, two_sym: bool,
                     base_nd: np.ndarray | None) -> np.ndarray:
    """Where the dominant hand's centre goes (canonical right-hand side; x < 0 is ipsilateral)."""
    hc, k = body.head_center, s.head_scale
    sh = body.shoulder_half
    table = {
        "neutral": np.array([-0.12 * sh / 0.18, body.chest[1] - 0.06, 0.34]),
        "chest": np.array([-0.04, body.chest[1], body.torso_front + 0.05]),
        "stomach": np.array([-0.04, body.stomach[1], body.torso_front + 0.07]),
        "chin": hc + CHIN * k + [0.0, -0.01, 0.05],
        "nose": hc + NOSE * k + [0.0, 0.0, 0.05],
        "forehead": hc + FOREHEAD * k + [0.0, 0.0, 0.05],
        "cheek": hc + RIGHT_CHEEK * k + [-0.01, 0.0, 0.045],
        "ear": hc + RIGHT_EAR * k + [-0.045, 0.0, 0.03],
        "shoulder": np.array([-sh + 0.03, body.shoulder_y + 0.01, 0.12]),
        "side": np.array([-sh - 0.10, body.chest[1] - 0.06, 0.22]),
    }
    p = table[loc].astype(float)
    if loc == "neutral" and base_nd is not None:
        # Dominant-on-base: "neutral" means acting on top of the base hand (mirrored to +x).
        p = np.array([-base_nd[0] - 0.04, base_nd[1] + 0.07, base_nd[2]])
    if two_sym and loc in _MIDLINE:
        p[0] = min(p[0], -0.075)  # two hands at a midline location sit side by side
    return p + np.asarray(s.location_bias)


# Movement paths, canonical right hand, offsets (metres) from the location centre:
# (start offset, keys of one repetition, keys that return to the start between repetitions).
# Each key is (dx, dy, dz, twist radians).
def _movement_keys(mv: str) -> tuple[tuple, list[tuple], list[tuple]]:
    if mv == "tap":
        return (0, 0, 0.05, 0), [(0, 0, 0, 0), (0, 0, 0.05, 0)], []
    if mv == "forward":
        return (0, 0, -0.03, 0), [(0, 0.02, 0.15, 0)], [(0, 0, -0.03, 0)]
    if mv == "down":
        return (0, 0.03, 0, 0), [(0, -0.12, 0.02, 0)], [(0, 0.03, 0, 0)]
    if mv == "side":
        return (0.04, 0, 0, 0), [(-0.13, 0, 0.03, 0)], [(0.04, 0, 0, 0)]
    if mv == "arc":
        return ((0.05, 0, 0, 0), [(-0.03, 0.07, 0.03, 0), (-0.11, 0, 0.02, 0)],
                [(-0.03, 0.07, 0.03, 0), (0.05, 0, 0, 0)])
    if mv == "circle":
        a = np.deg2rad(np.arange(90, 361, 90))
        r = 0.06
        return (0, r, 0, 0), [(r * np.sin(x), r * np.cos(x), 0, 0) for x in a], []
    if mv == "zigzag":
        return ((0.04, 0.06, 0, 0),
                [(-0.04, 0.02, 0, 0), (0.04, -0.02, 0, 0), (-0.04, -0.06, 0, 0)],
                [(0.04, 0.06, 0, 0)])
    if mv == "twist":
        return (0, 0, 0, -0.2), [(0, 0, 0.01, 1.1), (0, 0, 0, -0.2)], []
    if mv == "shake":
        return (0.03, 0, 0, 0), [(-0.05, 0, 0, 0), (0.04, 0, 0, 0)], []
    raise ValueError(mv)  # pragma: no cover


def _clamp_reach(p: np.ndarray, shoulder: np.ndarray, reach: float) -> np.ndarray:
    """Keep a wrist keyframe inside the arm's reach and below head height (signs at the
    forehead are made with the wrist in front of the face, not above the head)."""
    p = p.copy()
    p[1] = min(p[1], shoulder[1] + 0.6 * reach - 0.12)
    d = p - shoulder
    n = np.linalg.norm(d)
    return shoulder + d * (reach / n) if n > reach else p


def plan_sample(ci: ClassInfo, s: Signer, body: Body, cfg: SynthSignConfig,
                rng: np.random.Generator) -> _Plan:
    """Keyframes of one performance. Draws the same random numbers for any knob values and
    either handedness, so switching noise off or mirroring leaves the rest unchanged."""
    style = cfg.style_noise
    hand_len = HAND_LENGTH * s.hand_scale
    shoulder = np.array([-body.shoulder_half, body.shoulder_y, 0.0])
    reach = 0.95 * (body.upper_arm + body.forearm)
    rest = shoulder + [-0.02, -0.93 * (body.upper_arm + body.forearm), 0.06]
    rest_frame = _REST_FRAME

    two = ci.hands == 2
    sym = ci.symmetry in ("symmetric", "alternating")

    # Orientation of each hand: the phonological palm orientation plus per-sample noise.
    def base_frame(name: str) -> np.ndarray:
        f, n = _ORIENTATIONS[name]
        return frame_from(np.array(f), np.array(n)) @ exp_so3(
            rng.normal(0, cfg.orientation_noise, 3))

    r_dom = base_frame(ci.orientation)
    if ci.symmetry == "base":
        r_nd = base_frame(_BASE_ORIENTATION.get(ci.handshape_nondominant or "B", "up"))
    else:
        r_nd = base_frame(ci.orientation)  # symmetric/alternating share it; 1-handed unused

    def shape_of(name: str | None) -> np.ndarray:
        base = HANDSHAPES[name] if name else REST_SHAPE
        v = base + np.asarray(s.shape_bias) + rng.normal(0, cfg.handshape_noise, base.shape)
        return np.clip(v, -0.3, 2.2)

    shapes = np.stack([shape_of(ci.handshape_dominant), shape_of(ci.handshape_nondominant)])

    loc_noise = rng.normal(0, cfg.location_noise_m, 3)
    base_nd = np.array([-0.09, body.stomach[1] + 0.07, 0.30]) + rng.normal(0, 0.01, 3)
    centre = _location_centre(ci.location, body, s, two and sym,
                              base_nd if ci.symmetry == "base" else None) + loc_noise

    def wrist_of(c: np.ndarray, r: np.ndarray) -> np.ndarray:
        return c - 0.5 * hand_len * r[:, 1]

    amp = s.amplitude * float(np.exp(rng.normal(0, 0.08 * style)))
    start, rep_keys, between = _movement_keys(ci.movement)
    seq: list[np.ndarray] = [np.array(start, float)]
    rep_of = [0]  # repetition index of each key (repeats are performed faster)
    for r in range(ci.repetitions):
        a_r = amp * float(np.exp(rng.normal(0, 0.08 * style)))
        keys = list(rep_keys) + (list(between) if r < ci.repetitions - 1 else [])
        for k in keys:
            jit = np.concatenate([rng.normal(0, 0.006 * style, 3), rng.normal(0, 0.05 * style, 1)])
            seq.append(np.array(k, float) * [a_r, a_r, a_r, 1.0] + jit)
            rep_of.append(r)
    seq_arr = np.stack(seq)  # (M, 4)
    if ci.symmetry == "alternating":
        shift = max(1, len(rep_keys) // 2)
        seq_nd = np.roll(seq_arr, -shift, axis=0)
    else:
        seq_nd = seq_arr + np.concatenate(
            [rng.normal(0, 0.004 * style, (len(seq_arr), 3)), np.zeros((len(seq_arr), 1))], 1)

    rv_rest_dom = log_so3(r_dom.T @ rest_frame)
    rv_rest_nd = log_so3(r_nd.T @ rest_frame)
    twist_axis = np.array([0.0, 1.0, 0.0])  # finger axis in the hand frame (forearm roll)
    rv_noise = rng.normal(0, 0.03 * style, (len(seq_arr), 2, 3))

    # Rows: [pos_dom, pos_nd, rv_dom, rv_nd, w_dom, w_nd].
    rows: list[np.ndarray] = []
    nd_drift = rng.normal(0, 0.01, (len(seq_arr) + 3, 3))

    def row(p_d: np.ndarray, p_n: np.ndarray, rv_d: np.ndarray, rv_n: np.ndarray, w_d: float,
            w_n: float) -> np.ndarray:
        return np.concatenate([p_d, p_n, rv_d, rv_n, [w_d, w_n]])

    rows.append(row(rest, rest, rv_rest_dom, rv_rest_nd, 0.0, 0.0))
    base_wrist_nd = wrist_of(base_nd, r_nd)
    for m in range(len(seq_arr)):
        pd = _clamp_reach(wrist_of(centre + seq_arr[m, :3], r_dom), shoulder, reach)
        rvd = twist_axis * seq_arr[m, 3] + rv_noise[m, 0]
        if not two:
            pn, rvn, wn = rest + nd_drift[m], rv_rest_nd, 0.0
        elif ci.symmetry == "base":
            pn, rvn, wn = base_wrist_nd + 0.3 * nd_drift[m], rv_noise[m, 1], 1.0
        else:
            pn = _clamp_reach(wrist_of(centre + seq_nd[m, :3], r_nd), shoulder, reach)
            rvn, wn = twist_axis * seq_nd[m, 3] + rv_noise[m, 1], 1.0
        rows.append(row(pd, pn, rvd, rvn, 1.0, wn))
    # Return towards rest: not always all the way (clips are often cut early).
    rho = float(np.clip(rng.uniform(0.55, 1.0), 0, 1))
    last = rows[-1]
    end = row(last[0:3] + rho * (rest - last[0:3]), last[3:6] + rho * (rest - last[3:6]),
              (1 - rho) * last[6:9] + rho * rv_rest_dom, (1 - rho) * last[9:12] + rho * rv_rest_nd,
              1.0 - rho, (1.0 - rho) * last[13])
    rows.append(end)
    values = np.stack(rows)

    # Durations: a fixed cost per segment plus distance / speed; the approach and the return are
    # faster, larger movements. Tempo varies per signer and per sample.
    tempo = s.speed * float(np.exp(rng.normal(0, 0.06 * style)))
    seg_noise = np.exp(rng.normal(0, 0.10 * style, len(values) - 1))
    durs = []
    for i in range(len(values) - 1):
        dist = max(np.linalg.norm(values[i + 1, 0:3] - values[i, 0:3]),
                   np.linalg.norm(values[i + 1, 3:6] - values[i, 3:6]))
        turn = np.linalg.norm(values[i + 1, 6:9] - values[i, 6:9])
        if i == 0 or i == len(values) - 2:
            d = 0.08 + dist / 3.5 + turn / 14.0
        else:
            d = (0.07 + dist / 1.4 + turn / 9.0) * (0.65 if rep_of[i] > 0 else 1.0)
        durs.append(d * seg_noise[i] / tempo)
    hold0, hold1 = rng.uniform(0.02, 0.16), rng.uniform(0.0, 0.08)
    durs_arr = np.asarray(durs)
    total = hold0 + durs_arr.sum() + hold1
    n_frames = round(total * cfg.fps) + 1
    target = int(np.clip(n_frames, cfg.min_frames, cfg.max_frames))
    if target != n_frames:  # too fast/slow for the clip limits: retime the whole performance
        k = (target - 1) / (total * cfg.fps)
        hold0, durs_arr, n_frames = hold0 * k, durs_arr * k, target
    times = hold0 + np.concatenate([[0.0], np.cumsum(durs_arr)])

    swivel = s.swivel + rng.normal(0, 0.08 * style, 2)
    return _Plan(times=times, values=values, base_rot=np.stack([r_dom, r_nd]), shapes=shapes,
                 n_frames=n_frames, swivel=swivel)


def _camera(s: Signer, body: Body, cfg: SynthSignConfig, rng: np.random.Generator) -> Camera:
    """The signer's framing (vertical: head to hips) with square pixels; a wider frame shows
    more background. Per-sample framing jitter mimics a camera that is not perfectly fixed."""
    w, h = cfg.frame_size
    k = h / REFERENCE_SIZE
    jit = rng.normal(0, 1.0, 3)
    return Camera(
        frame_size=(w, h),
        px_per_m=NOMINAL_PX_PER_M * (1.70 / s.height) * s.px_scale * k * (1 + 0.01 * jit[2]),
        u0=w / 2 + (s.offset_px[0] + cfg.camera_jitter_px * jit[0]) * k,
        v0=h / 2 + (s.offset_px[1] + cfg.camera_jitter_px * jit[1]) * k,
        y_ref=body.camera_y,
    )


def _smooth_wobble(rng: np.random.Generator, t: np.ndarray, amp: float, n: int) -> np.ndarray:
    """Sum of two slow sinusoids per channel: sway, head motion, breathing."""
    f = rng.uniform(0.2, 1.2, (2, n))
    ph = rng.uniform(0, 2 * np.pi, (2, n))
    a = rng.uniform(0.3, 1.0, (2, n)) * amp
    return (a[None] * np.sin(2 * np.pi * f[None] * t[:, None, None] + ph[None])).sum(1)


def synthesize(ci: ClassInfo, s: Signer, cfg: SynthSignConfig, seed: np.random.SeedSequence
               ) -> Motion:
    """The noise-free motion of class `ci` performed by signer `s` (deterministic in `seed`)."""
    rng = np.random.default_rng(seed)
    body = body_of(s)
    plan = plan_sample(ci, s, body, cfg, rng)
    cam = _camera(s, body, cfg, rng)
    mirror = s.left_handed

    T = plan.n_frames
    S = round(T * cfg.imu_rate_hz / cfg.fps)
    t_video = np.arange(T) / cfg.fps
    t_imu = np.arange(S) / cfg.imu_rate_hz
    t_all = np.concatenate([t_video, t_imu])

    spline = CubicSpline(plan.times, plan.values, bc_type="clamped", axis=0)
    tc = np.clip(t_all, plan.times[0], plan.times[-1])
    inside = ((t_all > plan.times[0]) & (t_all < plan.times[-1]))[:, None]
    y0 = spline(tc)
    y1 = spline(tc, 1) * inside
    y2 = spline(tc, 2) * inside

    # Canonical tracks [dom, nd] -> anatomical [left, right].
    pos_c = np.stack([y0[:, 0:3], y0[:, 3:6]], 1)
    vel_c = np.stack([y1[:, 0:3], y1[:, 3:6]], 1)
    acc_c = np.stack([y2[:, 0:3], y2[:, 3:6]], 1)
    rv = np.stack([y0[:, 6:9], y0[:, 9:12]], 1)
    rv_dot = np.stack([y1[:, 6:9], y1[:, 9:12]], 1)
    weight = np.clip(y0[:, 12:14], 0.0, 1.0)
    rot_c = plan.base_rot[None] @ exp_so3(rv)
    gyro_c = np.einsum("thij,thj->thi", right_jacobian(rv), rv_dot)

    # Canonical tracks are right hands. The anatomical left hand is always a mirrored track:
    # the non-dominant one for a right-dominant signer, the dominant one for a left-dominant
    # signer. Mirroring: p -> M p, R -> M R M, body-frame angular velocity w -> -M w.
    dom_side, nd_side = (0, 1) if mirror else (1, 0)  # anatomical index of each track
    pos = np.empty_like(pos_c)
    vel = np.empty_like(vel_c)
    acc = np.empty_like(acc_c)
    rot = np.empty_like(rot_c)
    gyro = np.empty_like(gyro_c)
    shape_w = np.empty((len(t_all), 2, plan.shapes.shape[1]))
    swivel = np.empty(2)
    for track in (0, 1):
        side = dom_side if track == 0 else nd_side
        p, v, a, r, g = (pos_c[:, track], vel_c[:, track], acc_c[:, track], rot_c[:, track],
                         gyro_c[:, track])
        if side == 0:
            p, v, a = p @ MIRROR, v @ MIRROR, a @ MIRROR
            r = MIRROR @ r @ MIRROR
            g = -(g @ MIRROR)
        pos[:, side], vel[:, side], acc[:, side], rot[:, side], gyro[:, side] = p, v, a, r, g
        w = weight[:, track, None]
        shape_w[:, side] = (1 - w) * REST_SHAPE + w * plan.shapes[track]
        swivel[side] = plan.swivel[track] * (-1.0 if side == 0 else 1.0)

    vid = slice(0, T)
    imu = slice(T, T + S)

    # Body: slow torso sway about the hips and head motion; lateral components flip with the
    # mirror so a left-dominant signer is an exact mirror image.
    lateral = np.array([1.0, -1.0, -1.0]) if mirror else np.ones(3)
    sway = _smooth_wobble(rng, t_video, 0.015, 3) * lateral
    head_rv = _smooth_wobble(rng, t_video, 0.04, 3) * lateral
    mouth = np.clip(_smooth_wobble(rng, t_video, 0.006, 1)[:, 0], 0.0, None) * s.head_scale
    hip_c = np.array([0.0, body.hip_y, 0.0])
    r_torso = exp_so3(sway)  # (T, 3, 3)

    def torso(p: np.ndarray) -> np.ndarray:
        return hip_c + np.einsum("tij,j->ti", r_torso, p - hip_c)

    sh = body.shoulder_half
    shoulders = np.stack([torso(np.array([sh, body.shoulder_y, 0.0])),
                          torso(np.array([-sh, body.shoulder_y, 0.0]))], 1)  # (T, 2, 3) [L, R]
    head_c = torso(body.head_center)
    # The head turns about the top of the neck, not its centre.
    pivot = torso(body.neck + [0.0, 0.06, 0.0])
    r_head = r_torso @ exp_so3(head_rv)
    head_c = pivot + np.einsum("tij,tj->ti", exp_so3(head_rv), head_c - pivot)
    face, coco_head = head_points(head_c, r_head, s.head_scale, mouth)

    wrists = pos[vid]
    chest_y = body.chest[1]
    lift = np.clip((wrists[..., 1] - chest_y + 0.12) / 0.35, 0.0, 1.0)  # (T, 2)
    elbows = np.empty_like(wrists)
    for side, sx in ((0, 1.0), (1, -1.0)):
        # Low hands: the elbow hangs down, out and back. High hands (face signs): it comes
        # forward and out, as a real elbow does when the hand goes to the face.
        hint = np.stack([sx * (0.4 - 0.15 * lift[:, side]), -np.ones(T),
                         -0.3 + 1.0 * lift[:, side]], -1)
        elbows[:, side], _ = arm_ik(shoulders[:, side], wrists[:, side], body.upper_arm,
                                    body.forearm, hint, swivel[side])

    kp = np.zeros((T, L.N_KEYPOINTS, 3))
    kp[:, 0:5] = coco_head
    kp[:, [L.L_SHOULDER, L.R_SHOULDER]] = shoulders
    kp[:, [L.L_ELBOW, L.R_ELBOW]] = elbows
    kp[:, [L.L_WRIST, L.R_WRIST]] = wrists
    hh = body.hip_half
    legs = np.array([
        [hh, body.hip_y, 0.0], [-hh, body.hip_y, 0.0],
        [hh * 1.05, body.knee_y, 0.03], [-hh * 1.05, body.knee_y, 0.03],
        [hh * 0.95, body.ankle_y, -0.01], [-hh * 0.95, body.ankle_y, -0.01],
        [hh * 0.75, 0.01, 0.17], [hh * 1.25, 0.01, 0.15], [hh * 0.95, 0.01, -0.05],
        [-hh * 0.75, 0.01, 0.17], [-hh * 1.25, 0.01, 0.15], [-hh * 0.95, 0.01, -0.05],
    ])
    kp[:, 11:23] = legs[None]
    kp[:, L.FACE:L.FACE + 68] = face
    local = hand_points_local(shape_w[vid], s.hand_scale)  # (T, 2, 21, 3)
    local[:, 0] = local[:, 0] @ MIRROR  # the left hand is the mirror image of a right hand
    hands = wrists[:, :, None] + np.einsum("thij,thvj->thvi", rot[vid], local)
    kp[:, L.LEFT_HAND:L.LEFT_HAND + 21] = hands[:, 0]
    kp[:, L.RIGHT_HAND:L.RIGHT_HAND + 21] = hands[:, 1]

    return Motion(
        class_index=ci.index, signer_id=s.id, left_handed=mirror, fps=cfg.fps,
        imu_rate_hz=cfg.imu_rate_hz, t_video=t_video, t_imu=t_imu, keypoints3d=kp,
        keypoints2d=cam.project(kp), wrist_rot_video=rot[vid], wrist_pos_imu=pos[imu],
        wrist_acc_imu=acc[imu], wrist_rot_imu=rot[imu], wrist_gyro_imu=gyro[imu],
        hand_speed_video=np.linalg.norm(vel[vid], axis=-1), camera=cam,
        keyframe_times=plan.times, body=body, signer=s,
    )
