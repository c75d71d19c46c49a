"""3-D CNN blocks and the CAMFuse (reconstruction) network (docs/methods/camfuse.md)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from slrbench.errors import SlrbenchError
from slrbench.methods.blocks.conv3d import (
    Bottleneck3d,
    Pathway3d,
    S3DBlock,
    SeparableConv3d,
    StageSpec,
    conv3d_bn_relu,
    resnet3d50_slow,
    s3d_lite,
)
from slrbench.methods.blocks.gcn import count_trainable_parameters
from slrbench.methods.camfuse import STCAF, CAMFuse, CAMFuseConfig, Lateral, PathwayConfig

K = 20


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(before)


def _tiny_inputs(n: int = 2, pose_frames: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(n, 3, 8, 64, 64), torch.rand(n, 27, pose_frames, 16, 16)


def _with(config: CAMFuseConfig, **changes: object) -> CAMFuseConfig:
    return CAMFuseConfig.from_dict({**config.to_dict(), **changes})


@pytest.fixture(scope="module")
def paper_model() -> CAMFuse:
    torch.manual_seed(0)
    return CAMFuse(CAMFuseConfig.paper(K)).eval()


# ---------------------------------------------------------------------------------- blocks
def test_block_shapes() -> None:
    x = torch.randn(2, 8, 4, 12, 12)
    assert conv3d_bn_relu(8, 16, (1, 3, 3), (1, 2, 2))(x).shape == (2, 16, 4, 6, 6)
    sep = SeparableConv3d(8, 16, stride=2, temporal_stride=2)
    assert sep(x).shape == (2, 16, 2, 6, 6)
    assert sep.spatial[0].kernel_size == (1, 3, 3) and sep.temporal[0].kernel_size == (3, 1, 1)
    block = S3DBlock(8, 16, stride=2)
    assert block(x).shape == (2, 16, 4, 6, 6) and not isinstance(block.shortcut, torch.nn.Identity)
    assert isinstance(S3DBlock(8, 8).shortcut, torch.nn.Identity)
    neck = Bottleneck3d(8, 4, stride=2, inflate=True)
    assert neck(x).shape == (2, 16, 4, 6, 6)
    assert neck.conv1[0].kernel_size == (3, 1, 1) and neck.conv2[0].stride == (1, 2, 2)
    assert Bottleneck3d(8, 4).conv1[0].kernel_size == (1, 1, 1)
    assert isinstance(Bottleneck3d(16, 4).shortcut, torch.nn.Identity)


def test_zero_init_residual_block_is_its_shortcut() -> None:
    x = torch.randn(2, 16, 3, 5, 5)
    for block in (S3DBlock(16, 16, zero_init_residual=True),
                  Bottleneck3d(16, 4, zero_init_residual=True)):
        torch.testing.assert_close(block.eval()(x), torch.relu(x))


def test_pathway_stages_can_be_run_one_by_one() -> None:
    path = s3d_lite(3, (4, 8, 16), strides=(1, 2, 2)).eval()
    x = torch.randn(2, 3, 4, 32, 32)
    outs = path.forward_stages(x)
    assert [o.shape[1] for o in outs] == path.out_channels == [4, 8, 16]
    assert [tuple(o.shape[2:]) for o in outs] == path.feature_sizes(4, 32, 32)
    y = path.stem(x)
    for stage, expected in zip(path.stages, outs):
        y = stage(y)
        torch.testing.assert_close(y, expected)
    torch.testing.assert_close(path(x), outs[-1])


def test_resnet3d50_slow() -> None:
    path = resnet3d50_slow()
    assert [len(s) for s in path.stages] == [3, 4, 6, 3]
    assert path.out_channels == [256, 512, 1024, 2048]
    assert path.feature_sizes(8, 224, 224) == [(8, 56, 56), (8, 28, 28), (8, 14, 14), (8, 7, 7)]
    inflated = [isinstance(s, torch.nn.Sequential) and s[0].conv1[0].kernel_size[0] == 3
                for s in path.stages]
    assert inflated == [False, False, True, True]
    assert count_trainable_parameters(path) == 31_634_496


def test_block_config_errors() -> None:
    with pytest.raises(SlrbenchError, match="stage kind"):
        StageSpec("dense", 1, 8)
    with pytest.raises(SlrbenchError, match="at least one stage"):
        Pathway3d(3, 8, [])
    with pytest.raises(SlrbenchError, match="s3d_lite"):
        s3d_lite(3, (4, 8), depths=(1,))


# ---------------------------------------------------------------------------------- config
def test_presets_and_parameter_counts(paper_model: CAMFuse) -> None:
    counts = {w: count_trainable_parameters(CAMFuse(CAMFuseConfig.tiny(K, width=w)))
              for w in (8, 16)}
    paper = count_trainable_parameters(paper_model)
    print(f"camfuse parameters at K={K}: tiny w=8 {counts[8]:,}, tiny w=16 {counts[16]:,}, "
          f"paper {paper:,}")
    assert counts == {8: 164_124, 16: 640_248}
    assert paper == 38_660_960
    # Each class adds 2048 + 512 + 2560 weights and 3 biases: 48,804,500 at K = 2000.
    assert paper + (2000 - K) * (2048 + 512 + 2560 + 3) == 48_804_500
    # docs/methods/camfuse.md#presets estimates 95 k for tiny w = 8: same order of magnitude.
    assert 50_000 < counts[8] < 250_000
    # The paper RGB pathway is exactly ResNet3D-50 slow; only the pose stem grows with V.
    assert count_trainable_parameters(paper_model.rgb) == 31_634_496
    small = CAMFuse(CAMFuseConfig.tiny(K, in_channels=27))
    big = CAMFuse(CAMFuseConfig.tiny(K, in_channels=133))
    assert (count_trainable_parameters(big) - count_trainable_parameters(small)
            == (133 - 27) * 4 * 3 * 3)


def test_config_defaults_and_round_trip() -> None:
    for config in (CAMFuseConfig.tiny(K), CAMFuseConfig.tiny(K, width=16),
                   CAMFuseConfig.paper(K)):
        again = CAMFuseConfig.from_dict(config.to_dict())
        assert again == config
    paper = CAMFuseConfig.paper(K)
    assert paper.fusion_stages == ((2, 1), (3, 2)) and paper.lateral_stages == ((1, 0), (2, 1))
    tiny = CAMFuseConfig.tiny(K)
    assert tiny.attention_dim == 32 and tiny.attention_heads == 2 and not tiny.positional
    # Defaults: ST-CAF at the two deepest pairs, laterals one stage shallower.
    plain = CAMFuseConfig(K, tiny.rgb, tiny.pose)
    assert plain.fusion_stages == ((2, 2), (3, 3)) and plain.lateral_stages == ((1, 1), (2, 2))


def test_config_errors() -> None:
    data = CAMFuseConfig.tiny(K).to_dict()
    with pytest.raises(SlrbenchError, match="unknown field") as err:
        CAMFuseConfig.from_dict({**data, "heads": 4})
    assert "heads" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(SlrbenchError, match="camfuse config pose: unknown field"):
        CAMFuseConfig.from_dict({**data, "pose": {**data["pose"], "channels": 17}})
    with pytest.raises(SlrbenchError, match="token_mode"):
        CAMFuseConfig.from_dict({**data, "token_mode": "full"})
    with pytest.raises(SlrbenchError, match="fusion_stages"):
        CAMFuseConfig.from_dict({**data, "fusion_stages": [[4, 3]]})
    with pytest.raises(SlrbenchError, match="cross"):
        CAMFuseConfig.from_dict({**data, "fusion_stages": [[2, 3], [3, 2]]})
    with pytest.raises(SlrbenchError, match="divisible"):
        CAMFuseConfig.from_dict({**data, "attention_heads": 3})
    with pytest.raises(SlrbenchError, match="inflate"):
        PathwayConfig.from_dict({**data["rgb"], "inflate": [True] * 4})


# ---------------------------------------------------------------------------------- network
@pytest.mark.parametrize("width", [8, 16])
def test_tiny_forward_shapes(width: int) -> None:
    model = CAMFuse(CAMFuseConfig.tiny(K, width=width))
    rgb, heatmap = _tiny_inputs()
    out = model(rgb, heatmap)
    assert sorted(out) == ["fused", "pose", "rgb"]
    assert all(v.shape == (2, K) for v in out.values())
    assert list(model(rgb=rgb)) == ["rgb"] and model(rgb=rgb)["rgb"].shape == (2, K)
    assert list(model(heatmap=heatmap)) == ["pose"]
    no_fused = CAMFuse(_with(CAMFuseConfig.tiny(K, width=width), fused_head=False))
    assert sorted(no_fused(rgb, heatmap)) == ["pose", "rgb"]


def test_paper_forward_shapes(paper_model: CAMFuse) -> None:
    # Smaller inputs than the preset's 8 x 224^2 / 32 x 56^2 keep this fast; the positional
    # embeddings are resized to the smaller maps.
    rgb, heatmap = torch.randn(1, 3, 8, 112, 112), torch.rand(1, 133, 32, 28, 28)
    with torch.no_grad():
        out = paper_model(rgb, heatmap)
        assert sorted(out) == ["fused", "pose", "rgb"]
        assert all(v.shape == (1, K) for v in out.values())
        assert paper_model(rgb=rgb)["rgb"].shape == (1, K)
        assert paper_model(heatmap=heatmap)["pose"].shape == (1, K)


def test_input_errors() -> None:
    model = CAMFuse(CAMFuseConfig.tiny(K))
    rgb, heatmap = _tiny_inputs()
    with pytest.raises(SlrbenchError, match="neither"):
        model()
    with pytest.raises(SlrbenchError, match=r"heatmap: found shape \[2, 17"):
        model(rgb, heatmap[:, :17])
    with pytest.raises(SlrbenchError, match="batch"):
        model(rgb[:1], heatmap)
    with pytest.raises(SlrbenchError, match="pathway"):
        model.pathway_parameters("head")


def _set_fusion(model: CAMFuse, gate: float, lateral: float) -> None:
    with torch.no_grad():
        for g in model.gates():
            g.fill_(gate)
        for lat in model.laterals.values():
            assert isinstance(lat, Lateral)
            torch.nn.init.normal_(lat.to_rgb.weight, std=lateral)
            torch.nn.init.normal_(lat.to_pose.weight, std=lateral)


def test_initial_model_is_two_independent_pathways() -> None:
    model = CAMFuse(CAMFuseConfig.tiny(K)).eval()
    rgb, heatmap = _tiny_inputs()
    with torch.no_grad():
        both = model(rgb, heatmap)
        torch.testing.assert_close(both["rgb"], model(rgb=rgb)["rgb"])
        torch.testing.assert_close(both["pose"], model(heatmap=heatmap)["pose"])
        # Converse: non-zero gates (laterals still zero) make the pathways interact ...
        _set_fusion(model, gate=0.5, lateral=0.0)
        gated = model(rgb, heatmap)
        assert not torch.allclose(gated["rgb"], both["rgb"])
        assert not torch.allclose(gated["pose"], both["pose"])
        # ... and so do non-zero laterals alone.
        _set_fusion(model, gate=0.0, lateral=0.1)
        lateral = model(rgb, heatmap)
        assert not torch.allclose(lateral["rgb"], both["rgb"])
        assert not torch.allclose(lateral["pose"], both["pose"])


def test_pathway_parameters_partition_the_model() -> None:
    model = CAMFuse(CAMFuseConfig.tiny(K))
    groups = {n: {id(p) for p in model.pathway_parameters(n)} for n in ("rgb", "pose", "fusion")}
    assert sum(len(g) for g in groups.values()) == len({id(p) for p in model.parameters()})
    assert set().union(*groups.values()) == {id(p) for p in model.parameters()}
    assert {id(g) for g in model.gates()} <= groups["fusion"]
    assert {id(p) for p in model.rgb_head.parameters()} <= groups["rgb"]
    # A single-pathway step only reaches that pathway's parameters.
    model(rgb=_tiny_inputs()[0])["rgb"].sum().backward()
    touched = {id(p) for p in model.parameters() if p.grad is not None}
    assert touched == groups["rgb"]


def test_backward_reaches_the_gates() -> None:
    model = CAMFuse(CAMFuseConfig.tiny(K))
    out = model(*_tiny_inputs())
    sum(torch.nn.functional.cross_entropy(v, torch.arange(2)) for v in out.values()).backward()
    gates = model.gates()
    assert len(gates) == 4
    assert all(g.grad is not None and torch.isfinite(g.grad) for g in gates)
    assert any(g.grad is not None and g.grad != 0 for g in gates)


def test_same_seed_same_model() -> None:
    torch.manual_seed(3)
    a = CAMFuse(CAMFuseConfig.tiny(K)).state_dict()
    torch.manual_seed(3)
    b = CAMFuse(CAMFuseConfig.tiny(K)).state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("mode", ["pool", "factorised"])
def test_token_modes_with_four_times_the_pose_frames(mode: str) -> None:
    config = _with(CAMFuseConfig.tiny(K), token_mode=mode, positional=True)
    model = CAMFuse(config)
    _set_fusion(model, gate=0.5, lateral=0.1)
    out = model(*_tiny_inputs(pose_frames=32))
    assert all(v.shape == (2, K) and torch.isfinite(v).all() for v in out.values())


def test_bfloat16_autocast() -> None:
    model = CAMFuse(_with(CAMFuseConfig.tiny(K), positional=True))
    _set_fusion(model, gate=0.5, lateral=0.1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(*_tiny_inputs())
    assert all(v.dtype == torch.bfloat16 and torch.isfinite(v).all() for v in out.values())


# ---------------------------------------------------------------------------------- ST-CAF
def _maps(tp: int = 16, hp: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(2, 16, 4, 6, 6), torch.randn(2, 8, tp, hp, hp)


@pytest.mark.parametrize("mode", ["pool", "factorised"])
def test_stcaf_zero_gates_return_inputs(mode: str) -> None:
    module = STCAF(16, 8, dim=8, heads=2, token_mode=mode)
    rgb, pose = _maps()
    out_r, out_p = module(rgb, pose)
    assert torch.equal(out_r, rgb) and torch.equal(out_p, pose)


@pytest.mark.parametrize("mode", ["pool", "factorised"])
@pytest.mark.parametrize(("tp", "hp"), [(16, 6), (4, 6), (16, 12), (2, 3)])
def test_stcaf_rgb_output_depends_on_pose(mode: str, tp: int, hp: int) -> None:
    module = STCAF(16, 8, dim=8, heads=2, token_mode=mode, positional=True,
                   rgb_size=(4, 6, 6), pose_size=(16, 6, 6))
    with torch.no_grad():
        module.gate_rgb.fill_(1.0)
        module.gate_pose.fill_(1.0)
        rgb, pose = _maps(tp, hp)
        out_r, out_p = module(rgb, pose)
        assert out_r.shape == rgb.shape and out_p.shape == pose.shape
        assert torch.isfinite(out_r).all() and torch.isfinite(out_p).all()
        assert not torch.allclose(out_r, rgb)
        changed_r, changed_p = module(rgb, pose + torch.randn_like(pose))
        assert not torch.allclose(changed_r, out_r)
        _, changed_p = module(rgb + torch.randn_like(rgb), pose)
        assert not torch.allclose(changed_p, out_p)


def test_stcaf_errors() -> None:
    with pytest.raises(SlrbenchError, match="token_mode"):
        STCAF(16, 8, token_mode="full")
    with pytest.raises(SlrbenchError, match="rgb_size"):
        STCAF(16, 8, positional=True)
    module = STCAF(16, 8, dim=8, heads=2, token_mode="factorised")
    with pytest.raises(SlrbenchError, match="frame counts"):
        module(*_maps(tp=6))
