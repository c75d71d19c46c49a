"""The S3D backbone and VKNet, the network of NLA-SLR (docs/methods/nla.md#architecture,
#presets): the published parameter counts, shapes, gradients, the config round trip and the
independence of the streams without laterals."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from torch import nn
from torch.nn import functional

from slrbench.errors import SlrbenchError
from slrbench.methods.blocks.conv3d import (
    S3D_STAGE_CHANNELS,
    MixedBlock,
    SeparableConv3d,
    s3d_backbone,
    s3d_lite_backbone,
)
from slrbench.methods.nla import HEADS, Lateral, VKNet, VKNetConfig

K = 20
S3D_C = (64, 192, 480, 832)  # the lateral points c1..c4


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(before)


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _tiny_inputs(n: int = 2, channels: int = 63) -> dict[str, torch.Tensor]:
    return {"rgb": torch.randn(n, 3, 12, 64, 64), "heatmap": torch.rand(n, channels, 12, 32, 32),
            "rgb_low": torch.randn(n, 3, 6, 64, 64),
            "heatmap_low": torch.rand(n, channels, 6, 32, 32)}


def _with(config: VKNetConfig, **changes: object) -> VKNetConfig:
    return VKNetConfig.from_dict({**config.to_dict(), **changes})


@pytest.fixture(scope="module")
def tiny() -> VKNet:
    torch.manual_seed(0)
    return VKNet(VKNetConfig.tiny(K))


# ---------------------------------------------------------------------------------- S3D
def test_s3d_parameter_counts_match_the_published_ones() -> None:
    rgb, keypoint = _count(s3d_backbone(3)), _count(s3d_backbone(63))
    assert rgb == 7_910_048 and round(rgb / 1e6, 2) == 7.91
    assert keypoint == 8_098_208 and round(keypoint / 1e6, 2) == 8.10
    # Only the stem's spatial conv sees the input channels: 60 more channels x 64 x 7 x 7.
    assert keypoint - rgb == 60 * 64 * 7 * 7


def test_s3d_layers() -> None:
    net = s3d_backbone(3)
    assert net.out_channels == list(S3D_STAGE_CHANNELS)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv3d)]
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm3d)]
    assert all(c.bias is None for c in convs) and len(bns) == len(convs)
    assert all(b.eps == 1e-3 and b.momentum == 1e-3 for b in bns)
    stem = net.stages[0]
    assert isinstance(stem, SeparableConv3d)
    assert stem.spatial[0].kernel_size == (1, 7, 7) and stem.spatial[0].stride == (1, 2, 2)
    assert stem.temporal[0].kernel_size == (7, 1, 1) and stem.temporal[0].stride == (2, 1, 1)
    mixed = [m for m in net.modules() if isinstance(m, MixedBlock)]
    assert [m.out_channels for m in mixed] == [256, 480, 512, 512, 512, 528, 832, 832, 1024]
    assert all(isinstance(m.branch1[1], SeparableConv3d) and isinstance(m.branch2[1],
               SeparableConv3d) for m in mixed)


def test_s3d_stage_sizes_at_paper_scale() -> None:
    # Meta tensors: shape arithmetic at 64 x 224^2 / 112^2 without computing anything.
    with torch.device("meta"):
        rgb = s3d_backbone(3).forward_stages(torch.empty(1, 3, 64, 224, 224))
        keypoint = s3d_backbone(63).forward_stages(torch.empty(1, 63, 64, 112, 112))
    assert [tuple(x.shape[1:]) for x in rgb] == [
        (64, 32, 112, 112), (192, 32, 56, 56), (480, 32, 28, 28), (832, 16, 14, 14),
        (1024, 8, 7, 7)]
    assert [tuple(x.shape[2:]) for x in keypoint] == [
        (32, 56, 56), (32, 28, 28), (32, 14, 14), (16, 7, 7), (8, 3, 3)]


def test_s3d_runs_on_a_small_clip() -> None:
    net = s3d_backbone(3).eval()
    with torch.no_grad():
        outs = net.forward_stages(torch.randn(1, 3, 8, 64, 64))
    assert [tuple(x.shape[1:]) for x in outs] == [
        (64, 4, 32, 32), (192, 4, 16, 16), (480, 4, 8, 8), (832, 2, 4, 4), (1024, 1, 2, 2)]
    torch.testing.assert_close(net(torch.zeros(1, 3, 8, 64, 64)).shape, outs[-1].shape)


def test_s3d_lite_backbone() -> None:
    net = s3d_lite_backbone(63, (8, 16, 32, 64))
    outs = net.forward_stages(torch.rand(2, 63, 16, 32, 32))
    assert [tuple(x.shape[1:]) for x in outs] == [
        (8, 8, 16, 16), (16, 8, 8, 8), (32, 8, 4, 4), (64, 8, 2, 2)]
    with pytest.raises(SlrbenchError, match="s3d_lite backbone"):
        s3d_lite_backbone(3, (8,))


# ------------------------------------------------------------------------------ laterals
def test_lateral_shapes_and_init() -> None:
    spatial = Lateral(4, (1, 3, 3), (1, 2, 2))
    assert spatial.up.output_padding == (0, 1, 1) and spatial.down.bias is None
    assert spatial.up.bias is None
    big, small = spatial(torch.randn(2, 4, 3, 8, 8), torch.randn(2, 4, 3, 4, 4))
    assert big.shape == (2, 4, 3, 8, 8) and small.shape == (2, 4, 3, 4, 4)
    big, small = spatial(torch.randn(1, 4, 3, 5, 5), torch.randn(1, 4, 3, 3, 3))  # odd size
    assert big.shape == (1, 4, 3, 5, 5) and small.shape == (1, 4, 3, 3, 3)
    rate = Lateral(4, (3, 1, 1), (2, 1, 1))
    assert rate.up.output_padding == (1, 0, 0) and rate.down.stride == (2, 1, 1)
    high, low = rate(torch.randn(1, 4, 8, 3, 3), torch.randn(1, 4, 4, 3, 3))
    assert high.shape == (1, 4, 8, 3, 3) and low.shape == (1, 4, 4, 3, 3)
    with pytest.raises(SlrbenchError, match="vknet lateral"):
        rate(torch.randn(1, 4, 8, 3, 3), torch.randn(1, 4, 8, 3, 3))


def test_laterals_read_the_maps_before_the_exchange() -> None:
    lat = Lateral(2, (1, 3, 3), (1, 2, 2))
    big, small = torch.randn(1, 2, 1, 4, 4), torch.randn(1, 2, 1, 2, 2)
    new_big, new_small = lat(big, small)
    torch.testing.assert_close(new_big, big + lat.up(small, output_size=[1, 4, 4]))
    torch.testing.assert_close(new_small, small + lat.down(big))


# ------------------------------------------------------------------------- parameter counts
def test_paper_parameter_counts_match_the_published_ones() -> None:
    with torch.device("meta"):  # 131 M parameters: count them without allocating them
        model = VKNet(VKNetConfig.paper(2000))
    counts = model.parameter_counts()
    assert counts["backbone_rgb_h"] == counts["backbone_rgb_l"] == 7_910_048
    assert counts["backbone_kp_h"] == counts["backbone_kp_l"] == 8_098_208
    squares = sum(c * c for c in S3D_C)
    per_net = sum(_count(m) for name, m in model.intra.items() if name.startswith("high_"))
    assert per_net == 2 * 9 * squares == 17_344_512 and round(per_net / 1e6, 1) == 17.3
    assert counts["laterals"] == 2 * per_net
    assert counts["cross_rate"] == 2 * 2 * 3 * squares == 11_563_008
    assert counts["classifiers"] == counts["word_classifiers"] == 12_288 * 2000 + 7 * 2000
    assert counts["gloss_mappers"] == 300 * 12_288 + 12_288 == 3_698_688
    heads = counts["classifiers"] + counts["word_classifiers"] + counts["gloss_mappers"]
    assert round(heads / 1e6, 1) == 52.9
    assert counts["total"] == 131_147_232 and round(counts["total"] / 1e6) == 131
    assert counts["total"] == sum(v for k, v in counts.items() if k != "total")


def test_paper_forward_shapes_at_paper_scale() -> None:
    with torch.device("meta"):
        model = VKNet(VKNetConfig.paper(2000))
        out = model(torch.empty(1, 3, 64, 224, 224), torch.empty(1, 63, 64, 112, 112),
                    torch.empty(1, 3, 32, 224, 224), torch.empty(1, 63, 32, 112, 112))
    shapes = {h: tuple(v.shape) for h, v in out["logits"].items()}
    assert shapes == dict.fromkeys(HEADS, (1, 2000))
    assert {h: v.shape[1] for h, v in out["features"].items()} == {
        "rgb_h": 1024, "rgb_l": 1024, "kp_h": 1024, "kp_l": 1024, "fuse": 4096, "fuse_h": 2048,
        "fuse_l": 2048}


def test_tiny_parameter_counts(tiny: VKNet) -> None:
    counts = tiny.parameter_counts()
    squares = 8 * 8 + 16 * 16 + 32 * 32
    assert counts["laterals"] == 2 * 2 * 9 * squares
    assert counts["cross_rate"] == 2 * 2 * 3 * squares
    assert counts["classifiers"] == counts["word_classifiers"] == 12 * 64 * K + 7 * K
    assert counts["gloss_mappers"] == 50 * 12 * 64 + 12 * 64
    # 3x3 stems: (1, 3, 3) spatial conv in -> 8 channels, (3, 1, 1) temporal 8 -> 8, BN each.
    stem = 63 * 8 * 9 + 8 * 8 * 3 + 2 * 2 * 8
    assert _count(tiny.backbone("kp_h").stages[0]) == stem
    assert _count(tiny.backbone("rgb_h").stages[0]) == stem - 60 * 8 * 9
    assert counts["total"] == 579_640
    assert _count(VKNet(VKNetConfig.tiny(K, width=16))) == 2_149_720


# -------------------------------------------------------------------------- tiny forward
def test_tiny_forward_shapes(tiny: VKNet) -> None:
    out = tiny(**_tiny_inputs())
    assert set(out["logits"]) == set(out["features"]) == set(HEADS)
    assert all(v.shape == (2, K) for v in out["logits"].values())
    dims = {h: v.shape for h, v in out["features"].items()}
    assert dims == {"rgb_h": (2, 64), "rgb_l": (2, 64), "kp_h": (2, 64), "kp_l": (2, 64),
                    "fuse": (2, 256), "fuse_h": (2, 128), "fuse_l": (2, 128)}
    f = out["features"]
    torch.testing.assert_close(f["fuse"], torch.cat([f["rgb_h"], f["rgb_l"], f["kp_h"],
                                                     f["kp_l"]], 1))
    torch.testing.assert_close(f["fuse_l"], torch.cat([f["rgb_l"], f["kp_l"]], 1))
    assert tiny.imm_unit("fuse")(f["fuse"]).shape == (2, K, K)


def test_pooling_window_two_then_mean(tiny: VKNet) -> None:
    x = torch.randn(2, 3, 4, 2, 2)
    s = x.mean((3, 4))
    expected = ((s[:, :, 1:] + s[:, :, :-1]) / 2).mean(2)
    torch.testing.assert_close(tiny._pool(x), expected)
    torch.testing.assert_close(tiny._pool(x[:, :, :1]), s[:, :, 0])  # too short: plain mean


def test_backward_reaches_laterals_and_word_classifiers() -> None:
    model = VKNet(VKNetConfig.tiny(K)).train()
    model.set_gloss_vectors(torch.randn(K, 50))  # a zero table gives the mappers no gradient
    out = model(**_tiny_inputs())
    y = torch.randint(0, K, (2,))
    loss = sum(functional.cross_entropy(v, y) for v in out["logits"].values())
    loss = loss + sum(model.imm_unit(h)(out["features"][h]).logsumexp(-1).mean()
                      for h in HEADS)
    assert isinstance(loss, torch.Tensor)
    loss.backward()
    assert len(model.intra) == 6 and len(model.cross) == 6  # 3 points x 2 rates / modalities
    for part in (model.intra, model.cross):
        for p in part.parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0
    for h in HEADS:
        for lin in (model.word_classifier(h), model.imm_unit(h).mapper,
                    model.main_classifier(h)):
            assert lin.weight.grad is not None and lin.weight.grad.abs().sum() > 0


def test_rgb_head_ignores_heatmaps_only_without_laterals() -> None:
    inputs = _tiny_inputs()
    changed = {**inputs, "heatmap": inputs["heatmap"] + torch.rand_like(inputs["heatmap"]),
               "heatmap_low": inputs["heatmap_low"] * 2}
    separate = VKNet(_with(VKNetConfig.tiny(K), laterals=False, cross_rate=False)).eval()
    assert len(separate.intra) == len(separate.cross) == 0
    joined = VKNet(VKNetConfig.tiny(K)).eval()
    with torch.no_grad():
        a, b = separate(**inputs)["logits"], separate(**changed)["logits"]
        torch.testing.assert_close(a["rgb_h"], b["rgb_h"], rtol=0, atol=0)
        torch.testing.assert_close(a["rgb_l"], b["rgb_l"], rtol=0, atol=0)
        assert not torch.allclose(a["kp_h"], b["kp_h"])
        c, d = joined(**inputs)["logits"], joined(**changed)["logits"]
        assert not torch.allclose(c["rgb_h"], d["rgb_h"])


def test_cross_rate_alone_couples_the_rates_not_the_modalities() -> None:
    model = VKNet(_with(VKNetConfig.tiny(K), laterals=False)).eval()
    inputs = _tiny_inputs()
    changed = {**inputs, "rgb_low": inputs["rgb_low"] + 1.0}
    with torch.no_grad():
        a, b = model(**inputs)["logits"], model(**changed)["logits"]
    assert not torch.allclose(a["rgb_h"], b["rgb_h"])
    torch.testing.assert_close(a["kp_h"], b["kp_h"], rtol=0, atol=0)


def test_paper_forward_on_a_small_clip() -> None:
    # 16 / 8 frames: the shortest clips whose low rate keeps a frame through S3D's last pool.
    model = VKNet(VKNetConfig.paper(10)).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 16, 64, 64), torch.rand(1, 63, 16, 32, 32),
                    torch.randn(1, 3, 8, 64, 64), torch.rand(1, 63, 8, 32, 32))
    assert all(v.shape == (1, 10) and torch.isfinite(v).all() for v in out["logits"].values())


# --------------------------------------------------------------------- language accessors
def test_gloss_vectors_and_classifier_accessors() -> None:
    model = VKNet(VKNetConfig.tiny(K, gloss_dim=16))
    assert model.language and set(model.imm) == set(HEADS)
    assert all(float(model.imm_unit(h).glosses.abs().sum()) == 0 for h in HEADS)
    table = torch.randn(K, 16)
    model.set_gloss_vectors(table)
    for h in HEADS:
        torch.testing.assert_close(model.imm_unit(h).glosses, table)
        assert model.main_classifier(h).weight.shape == model.word_classifier(h).weight.shape
        assert model.word_classifier(h) is model.imm_unit(h).classifier
    with pytest.raises(SlrbenchError, match=r"gloss vectors: found shape \[20, 15\]"):
        model.set_gloss_vectors(torch.randn(K, 15))
    with pytest.raises(SlrbenchError, match="main classifier: found head 'pose'"):
        model.main_classifier("pose")
    plain = VKNet(_with(VKNetConfig.tiny(K), language=False))
    assert not plain.language and len(plain.imm) == 0
    plain.set_gloss_vectors(torch.randn(K, 50))  # nothing holds a table: no-op
    with pytest.raises(SlrbenchError, match="language is off"):
        plain.word_classifier("fuse")


# ------------------------------------------------------------------------------- config
def test_config_round_trip_and_errors() -> None:
    for config in (VKNetConfig.tiny(K, in_channels=27, width=4), VKNetConfig.paper(2000)):
        assert VKNetConfig.from_dict(config.to_dict()) == config
    d = VKNetConfig.tiny(K).to_dict()
    assert d["widths"] == [8, 16, 32, 64] and d["heads"] == list(HEADS)
    with pytest.raises(SlrbenchError, match=r"unknown field.*dropout") as err:
        VKNetConfig.from_dict({**d, "dropout": 0.5})
    assert "\n" not in str(err.value)
    bad: list[tuple[dict[str, object], str]] = [
        ({"backbone": "resnet"}, "backbone: found 'resnet'"),
        ({"backbone": "s3d"}, "widths: found"),
        ({"low_frames": 5}, "frames: found high 12, low 5"),
        ({"stem_kernel": 0}, "stem_kernel: found 0"),
        ({"heatmap_size": 16}, "sizes: found rgb 64, heatmap 16"),
        ({"heads": ["fuse", "pose"]}, "heads: found"),
        ({"heads": ["fuse", "fuse"]}, "heads: found"),
        ({"gloss_dim": 0}, "gloss_dim: found 0"),
        ({"widths": "8,16"}, "widths: found '8,16'"),
    ]
    for changes, message in bad:
        with pytest.raises(SlrbenchError, match=message):
            VKNetConfig.from_dict({**d, **changes})
    assert VKNetConfig.from_dict({**d, "low_frames": 5, "cross_rate": False}).low_frames == 5
    with pytest.raises(SlrbenchError, match="num_classes: missing"):
        VKNetConfig.from_dict({k: v for k, v in d.items() if k != "num_classes"})


def test_subset_of_heads(tiny: VKNet) -> None:
    model = VKNet(_with(tiny.config, heads=["fuse", "rgb_h"]))
    out = model(**_tiny_inputs(1))
    assert list(out["logits"]) == ["fuse", "rgb_h"] and set(model.imm) == {"fuse", "rgb_h"}


def test_input_errors(tiny: VKNet) -> None:
    inputs = _tiny_inputs(1)
    with pytest.raises(SlrbenchError, match=r"vknet input kp_h: found shape \[1, 27"):
        tiny(**{**inputs, "heatmap": torch.rand(1, 27, 16, 32, 32)})
    with pytest.raises(SlrbenchError, match="vknet input rgb_l"):
        tiny(**{**inputs, "rgb_low": torch.rand(2, 3, 8, 64, 64)})
