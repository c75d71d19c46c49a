"""SynthSign: IMU physics with noise off, mirroring, and IMU/pose agreement."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from slrbench.datasets.synthsign import SynthSign, SynthSignConfig, load_synthsign
from slrbench.datasets.synthsign.geometry import exp_so3, log_so3
from slrbench.datasets.synthsign.layout import flip_permutation
from slrbench.datasets.synthsign.motion import GRAVITY, synthesize

G = 9.81


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> SynthSign:
    cfg = SynthSignConfig.preset("tiny", seed=11, n_classes=10, n_train_signers=3,
                                 n_val_signers=1, n_test_signers=2, repetitions=1).noise_free()
    return SynthSign(cfg, cache_dir=tmp_path_factory.mktemp("synthsign_clean")).prepare()


def _samples(ds: SynthSign) -> range:
    return range(0, len(ds.ids("train")), 3)


def test_accelerometer_reads_gravity_at_rest(clean: SynthSign) -> None:
    sensor = clean.sensor("train")
    for i in _samples(clean):
        m = clean.motion("train", i)
        rest = m.t_imu < m.keyframe_times[0]  # before the hands start moving
        assert rest.sum() >= 1
        d = sensor.data[i, :sensor.lengths[i]][rest]
        for acc, gyro in ((d[:, 0:3], d[:, 3:6]), (d[:, 6:9], d[:, 9:12])):
            np.testing.assert_allclose(np.linalg.norm(acc, axis=1), G, atol=1e-3)
            np.testing.assert_allclose(gyro, 0.0, atol=1e-5)
        # +9.81 along the sensor's "up": f = R^T (0, 9.81, 0).
        up = np.einsum("sji,j->si", m.wrist_rot_imu[rest, 0], -GRAVITY)
        np.testing.assert_allclose(d[:, 0:3], up, atol=1e-3)


def test_imu_acceleration_is_the_second_derivative_of_the_wrist(clean: SynthSign) -> None:
    sensor = clean.sensor("train")
    for i in _samples(clean):
        m = clean.motion("train", i)
        n = sensor.lengths[i]
        dt = 1.0 / sensor.rate_hz
        f = sensor.data[i, :n].reshape(n, 2, 2, 3)[:, :, 0]  # (S, hand, 3) specific force
        world = np.einsum("shij,shj->shi", m.wrist_rot_imu, f) + GRAVITY  # R f + g
        p = m.wrist_pos_imu
        fd = (p[2:] - 2 * p[1:-1] + p[:-2]) / dt**2
        # The spline is cubic between keyframes, where a central difference is exact; skip the
        # samples whose stencil straddles a keyframe (the acceleration has a kink there).
        t = m.t_imu[1:-1]
        near = np.min(np.abs(t[:, None] - m.keyframe_times[None]), axis=1) < dt
        ok = ~near
        assert ok.mean() > 0.7
        err = np.abs(world[1:-1][ok] - fd[ok])
        assert err.max() < 1e-2, err.max()
        assert np.abs(fd[ok]).max() > 1.0  # the wrists really move


def test_gyroscope_matches_the_orientation_change(clean: SynthSign) -> None:
    sensor = clean.sensor("train")
    for i in _samples(clean):
        m = clean.motion("train", i)
        n = sensor.lengths[i]
        dt = 1.0 / sensor.rate_hz
        w = sensor.data[i, :n].reshape(n, 2, 2, 3)[:, :, 1]  # (S, hand, 3) body rates
        R = m.wrist_rot_imu
        assert np.abs(w).max() > 0.5
        for h in range(2):
            for k in range(n - 1):
                # Midpoint rule: R_{k+1} ~= R_k exp(dt (w_k + w_{k+1}) / 2).
                pred = R[k, h] @ exp_so3(0.5 * dt * (w[k, h] + w[k + 1, h]).astype(float))
                err = np.linalg.norm(log_so3(pred.T @ R[k + 1, h]))
                assert err < 2e-3, (i, h, k, err)


def test_left_dominant_signer_is_the_exact_mirror_image(clean: SynthSign) -> None:
    perm = flip_permutation()
    sample = clean._samples["train"][4]
    ci = clean.classes[sample.label]
    signer = clean.signer_list[sample.signer]
    seed = clean._seeds(sample)[0]
    a = synthesize(ci, signer, clean.config, seed)
    b = synthesize(ci, dataclasses.replace(signer, left_handed=not signer.left_handed),
                   clean.config, seed)
    mirrored = b.keypoints3d[:, perm] * np.array([-1.0, 1.0, 1.0])
    np.testing.assert_allclose(a.keypoints3d, mirrored, atol=1e-9)
    # The IMUs swap wrists; the mirrored sensor frame turns (wx, wy, wz) into (wx, -wy, -wz).
    np.testing.assert_allclose(a.wrist_pos_imu, b.wrist_pos_imu[:, ::-1] * [-1, 1, 1],
                               atol=1e-9)
    np.testing.assert_allclose(a.wrist_gyro_imu, b.wrist_gyro_imu[:, ::-1] * [1, -1, -1],
                               atol=1e-9)


def test_double_integrated_imu_matches_the_2d_wrist(clean: SynthSign) -> None:
    """Integrate the IMU twice (from rest) and compare with the detected 2-D wrist keypoint:
    equal up to scale/offset (the camera) and drift."""
    sensor, pose = clean.sensor("train"), clean.pose("train")
    compared = 0
    for i in _samples(clean):
        m = clean.motion("train", i)
        n, T = sensor.lengths[i], pose.lengths[i]
        dt = 1.0 / sensor.rate_hz
        f = sensor.data[i, :n].reshape(n, 2, 2, 3)[:, :, 0].astype(float)
        acc = np.einsum("shij,shj->shi", m.wrist_rot_imu, f) + GRAVITY
        vel = np.concatenate([np.zeros((1, 2, 3)), np.cumsum(0.5 * (acc[1:] + acc[:-1]) * dt,
                                                             axis=0)])
        pos = np.concatenate([np.zeros((1, 2, 3)), np.cumsum(0.5 * (vel[1:] + vel[:-1]) * dt,
                                                             axis=0)])
        step = round(sensor.rate_hz / clean.spec.fps)
        pos_v = pos[::step][:T]  # at the video frames
        tv = np.arange(T) / clean.spec.fps
        for h, joint in ((0, 9), (1, 10)):
            kp = pose.data[i, :T, joint]
            ok = (kp[:, 2] > 0.3) & (kp[:, 1] < clean.config.frame_size[1] - 1)
            if ok.sum() < 8 or np.ptp(pos_v[ok, h, :2], axis=0).max() < 0.05:
                continue  # a resting or unseen hand: nothing to compare
            for axis, sign in ((0, 1.0), (1, -1.0)):  # image y points down
                x = pos_v[ok, h, axis]
                design = np.stack([x, np.ones_like(x), tv[ok]], 1)
                coef, *_ = np.linalg.lstsq(design, kp[ok, axis], rcond=None)
                fit = design @ coef
                r2 = 1 - np.sum((kp[ok, axis] - fit) ** 2) / np.sum(
                    (kp[ok, axis] - kp[ok, axis].mean()) ** 2)
                if np.ptp(x) > 0.05:
                    assert r2 > 0.97, (i, h, axis, r2)
                    assert np.sign(coef[0]) == sign
                    compared += 1
    assert compared >= 3


def test_noise_switches_off_independently(tmp_path: Path) -> None:
    small = {"n_classes": 4, "n_train_signers": 2, "n_val_signers": 1, "n_test_signers": 1,
             "repetitions": 1}
    noisy = load_synthsign("tiny", seed=4, cache_dir=tmp_path, **small)
    quiet = SynthSign(noisy.config.noise_free(), cache_dir=tmp_path).prepare()
    # Same motion underneath; only the measurement noise differs.
    np.testing.assert_allclose(noisy.motion("test", 0).keypoints3d,
                               quiet.motion("test", 0).keypoints3d, atol=0, rtol=0)
    a, b = noisy.sensor("test").data, quiet.sensor("test").data
    diff = np.abs(a - b)[:, :, 0:3]
    assert 0.01 < diff[b[:, :, 0] != 0].mean() < 0.5
