"""Graph, shared blocks and the SL-GCN model (docs/methods/samslr-pipeline.md#bones-and-graph,
docs/methods/slgcn.md)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from slrbench.errors import SlrbenchError
from slrbench.methods.blocks.gcn import (
    DropBlockTemporal,
    DropGraphSpatial,
    STCAttention,
    count_trainable_parameters,
    keep_prob_schedule,
)
from slrbench.methods.blocks.graph import layout_adjacency, spatial_adjacency
from slrbench.methods.slgcn import (
    PRESETS,
    SLGCN,
    DecoupledGCN,
    SLGCNConfig,
    build_slgcn,
)


# ---------------------------------------------------------------------------------- graph
def test_spatial_adjacency_by_hand() -> None:
    a = spatial_adjacency(4, [(0, 1), (0, 2), (2, 3)])
    assert a.shape == (3, 4, 4) and a.dtype == np.float32
    np.testing.assert_array_equal(a[0], np.eye(4))
    inward = np.zeros((4, 4))
    inward[1, 0] = inward[2, 0] = 0.5  # [child, parent], column 0 has two entries
    inward[3, 2] = 1.0
    outward = np.zeros((4, 4))
    outward[0, 1] = outward[0, 2] = outward[2, 3] = 1.0  # column 0 has none: stays zero
    np.testing.assert_allclose(a[1], inward)
    np.testing.assert_allclose(a[2], outward)


def test_samslr27_adjacency() -> None:
    a = layout_adjacency("samslr_27")
    assert a.shape == (3, 27, 27)
    col = a[1].sum(axis=0)  # inward: parents' columns sum to 1, leaves' to 0
    parents = {p for p, _ in [(0, 1), (7, 8), (17, 18), (5, 7), (6, 17)]}
    assert all(col[p] == pytest.approx(1.0) for p in parents)
    assert col[10] == 0 and col[26] == 0
    assert a[1][7, 5] == 1.0 and a[1][8, 7] == pytest.approx(0.2)  # hand root has 5 children
    np.testing.assert_allclose(a[2].sum(axis=0)[1:], 1.0)  # every non-root has one parent
    assert a[2][:, 0].sum() == 0


# --------------------------------------------------------------------------------- blocks
@pytest.mark.parametrize(("v", "ker"), [(27, 27), (10, 9), (21, 21)])
def test_stc_attention_init(v: int, ker: int) -> None:
    att = STCAttention(16, v)
    assert att.conv_sa.kernel_size == (ker,)
    assert not att.conv_ta.weight.any() and not att.fc2c.weight.any()
    y = torch.randn(2, 16, 12, v)
    assert att(y).shape == y.shape
    # Temporal and channel gates start at sigmoid(0) = 0.5: with the spatial gate forced to
    # 0.5 too, the block is y * 1.5 ** 3.
    with torch.no_grad():
        att.conv_sa.weight.zero_()
        att.conv_sa.bias.zero_()
    torch.testing.assert_close(att(y), y * 1.5**3)


def test_drops_identity_in_eval_and_at_keep_one() -> None:
    x = torch.randn(2, 8, 50, 27)
    adj = torch.from_numpy(layout_adjacency("samslr_27").sum(0))
    dg, dt = DropGraphSpatial(27), DropBlockTemporal(41)
    dg.train(), dt.train()
    assert dg(x, 1.0, adj) is x and dt(x, 1.0) is x
    dg.eval(), dt.eval()
    assert dg(x, 0.5, adj) is x and dt(x, 0.5) is x
    with pytest.raises(SlrbenchError):
        dt.train()(x, 0.0)


def test_dropgraph_drops_seed_and_neighbours() -> None:
    torch.manual_seed(0)
    adj = torch.from_numpy(spatial_adjacency(4, [(0, 1), (1, 2), (2, 3)]).sum(0))
    x = torch.full((1, 2, 5, 4), 1e-4)
    x[..., 3] = 1.0  # node 3 carries the activity: it is the (only likely) seed
    out = DropGraphSpatial(4).train()(x, 0.01, adj)
    assert not out[..., 2:].any()  # seed 3 and its neighbour 2
    torch.testing.assert_close(out[..., :2], x[..., :2] * 2.0)  # rescaled by 4 / 2


def test_dropblock_temporal_block() -> None:
    torch.manual_seed(0)
    x = torch.full((1, 2, 20, 3), 1e-4)
    x[:, :, 10] = 1.0  # the hot frame is the seed
    out = DropBlockTemporal(5).train()(x, 0.01)
    assert not out[:, :, 8:13].any()
    kept = torch.cat([out[:, :, :8], out[:, :, 13:]], dim=2)
    torch.testing.assert_close(kept, torch.full_like(kept, 1e-4 * 20 / 15))


def test_keep_prob_schedule() -> None:
    assert keep_prob_schedule(0) == 1.0
    assert keep_prob_schedule(50) == pytest.approx(0.95)
    assert keep_prob_schedule(100) == pytest.approx(0.9)
    assert keep_prob_schedule(249) == pytest.approx(0.9)
    assert keep_prob_schedule(1, decay_epochs=2, end=0.8) == pytest.approx(0.9)


# ------------------------------------------------------------------------------ decoupled
def test_decoupled_gcn_matches_per_channel_reference() -> None:
    """Upstream semantics: DecoupleA tiled to C_out channels (channel c -> group c mod G),
    each channel's matrix divided by its column sums + 0.001, mixed over joints."""
    torch.manual_seed(0)
    a = torch.from_numpy(layout_adjacency("hand10_left"))
    gcn = DecoupledGCN(3, 8, a, groups=4).eval()
    with torch.no_grad():
        gcn.decouple_a.add_(0.1 * torch.randn_like(gcn.decouple_a))
        gcn.bn.weight.fill_(1.0)
    x = torch.randn(2, 3, 5, 10)
    with torch.no_grad():
        h = gcn.bn0(gcn.linear(x)).view(2, 3, 8, 5, 10)
        tiled = gcn.decouple_a.repeat(1, 8 // 4, 1, 1)  # (3, 8, V, V)
        ref = torch.zeros(2, 8, 5, 10)
        for k in range(3):
            for c in range(8):
                m = tiled[k, c] / (tiled[k, c].sum(dim=0, keepdim=True) + 0.001)
                ref[:, c] += h[:, k, c] @ m
        ref = torch.relu(gcn.bn(ref) + gcn.down(x))
        torch.testing.assert_close(gcn(x), ref, rtol=1e-4, atol=1e-5)
    assert gcn.bn.bias.abs().sum() == 0
    assert DecoupledGCN(3, 8, a, 4).bn.weight[0].item() == pytest.approx(1e-6)


# ---------------------------------------------------------------------------------- model
@pytest.mark.parametrize(("k", "expected"), [(226, 3_838_584), (2000, 4_294_502)])
def test_paper_parameter_count_matches_upstream(k: int, expected: int) -> None:
    model = build_slgcn("paper", k)
    assert count_trainable_parameters(model) == expected
    assert sum(b.numel() for b in model.buffers() if b.dtype.is_floating_point) > 0


@pytest.mark.parametrize(
    ("layout", "k", "expected"),
    [
        ("samslr_27", 20, 210_206),
        ("samslr_27", 226, 223_596),
        ("hand10_left", 20, 146_264),
        ("hand21_right", 20, 181_370),
    ],
)
def test_tiny_parameter_counts(layout: str, k: int, expected: int) -> None:
    assert count_trainable_parameters(build_slgcn("tiny", k, layout)) == expected


@pytest.mark.parametrize("layout", ["samslr_27", "hand10_right", "hand21_left"])
def test_tiny_output_shapes_train_and_eval(layout: str) -> None:
    torch.manual_seed(0)
    model = build_slgcn("tiny", 7, layout)
    v = model.layout.num_nodes
    x = torch.randn(3, 3, 24, v, 1)
    model.train()
    out = model(x, keep_prob=0.9)
    assert out.shape == (3, 7)
    out.sum().backward()
    model.eval()
    with torch.no_grad():
        assert model(x).shape == (3, 7)
        torch.testing.assert_close(model(x, 0.5), model(x, 1.0))  # drops off in eval


@pytest.mark.parametrize("layout", ["samslr_27", "hand10_left", "hand21_right"])
def test_paper_forward_small(layout: str) -> None:
    model = build_slgcn("paper", 11, layout).eval()
    v = model.layout.num_nodes
    with torch.no_grad():
        assert model(torch.randn(2, 3, 16, v, 1)).shape == (2, 11)


def test_drop_placement_and_strides() -> None:
    paper = build_slgcn("paper", 5)
    assert [b.drops for b in paper.blocks] == [False] * 6 + [True] * 4
    assert paper.blocks[0].residual is None
    tiny = build_slgcn("tiny", 5)
    assert [b.drops for b in tiny.blocks] == [False, False, True, True]
    with torch.no_grad():
        feats = tiny.blocks[0](torch.randn(1, 3, 32, 27))
        assert feats.shape == (1, 32, 32, 27)
        assert tiny.blocks[2](torch.randn(1, 32, 32, 27)).shape == (1, 64, 16, 27)


def test_adjacency_freeze_toggle() -> None:
    model = build_slgcn("tiny", 20)
    full = count_trainable_parameters(model)
    model.set_adjacency_trainable(False)
    assert count_trainable_parameters(model) == full - 4 * 3 * 8 * 27 * 27
    model.train()
    model(torch.randn(2, 3, 16, 27, 1)).sum().backward()
    assert all(p.grad is None for p in model.adjacency_parameters())
    assert model.blocks[0].gcn.linear.weight.grad is not None
    model.set_adjacency_trainable(True)
    assert count_trainable_parameters(model) == full


def test_config_and_errors() -> None:
    cfg = PRESETS["paper"]
    assert SLGCNConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.to_dict()["widths"][-1] == 256
    with pytest.raises(SlrbenchError, match="tiny, paper"):
        build_slgcn("huge", 10)
    with pytest.raises(SlrbenchError):
        SLGCNConfig(widths=(30,), strides=(1,), groups=8, drop_blocks=0)
    model = SLGCN(4, "samslr_27", PRESETS["tiny"])
    with pytest.raises(SlrbenchError, match="expected"):
        model(torch.randn(1, 3, 8, 10, 1))
