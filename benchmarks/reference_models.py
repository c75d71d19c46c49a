"""Straightforward reference implementations of SL-GCN, DSTA-SLR and the LGF hand streams.

Plain, obvious PyTorch written for `benchmarks/train_bench.py` and
`tests/test_model_equivalence.py`: the same layers, parameter shapes and state-dict keys as the
native models in `slrbench.methods` (`slgcn.py`, `dsta.py`, `blocks/gcn.py`), computed the way the
method cards describe them (docs/methods/slgcn.md#architecture,
docs/methods/dsta.md#architecture): DecoupleA tiled to one matrix per channel and normalised
every forward pass, one joint mixing per adjacency subset, per-head loops for DSTA's joint
attention, one residual gate after the other in the STC attention, DropGraph and the temporal
DropBlock as two separate steps. Nothing here is tuned for speed.

Weights are meant to be copied from a native model (``ref.load_state_dict(native.state_dict())``,
strict); the reference's own initialisation is PyTorch's default. The drops consume the global
RNG exactly as the native ones do (one ``torch.bernoulli`` over (N, V) per DropGraph, one over
(N, T) per DropBlockT, in the same order), so with equal weights and the same seed both give the
same outputs in training mode too, up to float rounding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from slrbench.datasets.layouts import get_layout
from slrbench.methods.blocks.graph import layout_adjacency
from slrbench.methods.dsta import DSTAConfig
from slrbench.methods.slgcn import SLGCNConfig

DEGREE_CONSTANT = 1.92  # DropGraph: gamma = (1 - keep_prob) / (1 + 1.92)


# ------------------------------------------------------------------------------ shared
def drop_graph(x: Tensor, keep_prob: float, adjacency: Tensor) -> Tensor:
    """Zero a seed joint and its neighbours in every channel and frame, rescale the rest."""
    n, _, _, v = x.shape
    activity = x.detach().abs().mean(dim=2).mean(dim=1)  # (N, V)
    activity = activity / activity.sum().clamp_min(1e-12) * activity.numel()
    gamma = (1.0 - keep_prob) / (1.0 + DEGREE_CONSTANT)
    seeds = torch.bernoulli((activity * gamma).clamp(max=1.0))
    dropped = seeds @ adjacency.to(x.dtype) > 0.001
    mask = (~dropped).to(x.dtype).view(n, 1, 1, v)
    return x * mask * (mask.numel() / mask.sum().clamp_min(1.0))


def drop_time(x: Tensor, keep_prob: float, block_size: int) -> Tensor:
    """Zero ``block_size`` frames around each seed frame, rescale the rest."""
    n, _, t, _ = x.shape
    activity = x.detach().abs().mean(dim=3).mean(dim=1)  # (N, T)
    activity = activity / activity.sum().clamp_min(1e-12) * activity.numel()
    gamma = (1.0 - keep_prob) / block_size
    seeds = torch.bernoulli((activity * gamma).clamp(max=1.0))
    grown = F.max_pool1d(seeds.unsqueeze(1), block_size, stride=1, padding=block_size // 2)
    mask = (1.0 - grown[:, 0, :t]).view(n, 1, t, 1)
    return x * mask * (mask.numel() / mask.sum().clamp_min(1.0))


def drops(x: Tensor, keep_prob: float, adjacency: Tensor, block_size: int,
          training: bool) -> Tensor:
    if not training or keep_prob >= 1.0:
        return x
    return drop_time(drop_graph(x, keep_prob, adjacency), keep_prob, block_size)


def conv_bn(c_in: int, c_out: int, kernel: int = 1, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, (kernel, 1), stride=(stride, 1), padding=((kernel - 1) // 2, 0)),
        nn.BatchNorm2d(c_out),
    )


class InputNorm(nn.Module):
    """BatchNorm over the (person, joint, channel) series; persons folded into the batch."""

    def __init__(self, channels: int, nodes: int, persons: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(persons * nodes * channels)

    def forward(self, x: Tensor) -> Tensor:
        n, c, t, v, m = x.shape
        x = x.permute(0, 4, 3, 1, 2).reshape(n, m * v * c, t)
        x = self.bn(x)
        return x.reshape(n, m, v, c, t).permute(0, 1, 3, 4, 2).reshape(n * m, c, t, v)


class STCAttention(nn.Module):
    """Spatial, then temporal, then channel gate, each applied as y * g + y."""

    def __init__(self, channels: int, nodes: int) -> None:
        super().__init__()
        ker = max(nodes - 1 if nodes % 2 == 0 else nodes, 1)
        self.conv_sa = nn.Conv1d(channels, 1, ker, padding=(ker - 1) // 2)
        self.conv_ta = nn.Conv1d(channels, 1, 9, padding=4)
        self.fc1c = nn.Linear(channels, channels // 2)
        self.fc2c = nn.Linear(channels // 2, channels)

    def forward(self, y: Tensor) -> Tensor:
        spatial = torch.sigmoid(self.conv_sa(y.mean(dim=2)))  # (N, 1, V)
        y = y * spatial.unsqueeze(2) + y
        temporal = torch.sigmoid(self.conv_ta(y.mean(dim=3)))  # (N, 1, T)
        y = y * temporal.unsqueeze(3) + y
        channel = torch.sigmoid(self.fc2c(torch.relu(self.fc1c(y.mean(dim=(2, 3))))))
        return y * channel.unsqueeze(2).unsqueeze(3) + y


class SkeletonNet(nn.Module):
    """Input norm -> stages -> mean over time, joints and persons -> linear head."""

    def __init__(self, num_classes: int, layout: str, in_channels: int, persons: int,
                 width: int) -> None:
        super().__init__()
        self.nodes = get_layout(layout).num_nodes
        self.persons = persons
        self.input_norm = InputNorm(in_channels, self.nodes, persons)
        self.stages = nn.ModuleList()
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x: Tensor, keep_prob: float = 1.0) -> Tensor:
        x = self.input_norm(x)
        for stage in self.stages:
            x = stage(x, keep_prob)
        n_m, c = x.shape[:2]
        pooled = x.reshape(n_m // self.persons, self.persons, c, -1).mean(dim=3).mean(dim=1)
        return self.fc(pooled)


# ------------------------------------------------------------------------------ SL-GCN
class DecoupledGCN(nn.Module):
    """1x1 conv to 3 C_out, BN, one joint mixing per subset with DecoupleA tiled to one
    normalised matrix per channel (channel c uses group c mod groups), sum, BN, shortcut, ReLU."""

    def __init__(self, c_in: int, c_out: int, adjacency: Tensor, groups: int) -> None:
        super().__init__()
        subsets = adjacency.shape[0]
        self.c_out, self.groups = c_out, groups
        self.decouple_a = nn.Parameter(adjacency.float().unsqueeze(1).repeat(1, groups, 1, 1))
        self.linear = nn.Conv2d(c_in, c_out * subsets, 1)
        self.bn0 = nn.BatchNorm2d(c_out * subsets)
        self.bn = nn.BatchNorm2d(c_out)
        self.down: nn.Module = conv_bn(c_in, c_out) if c_in != c_out else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        tiled = self.decouple_a.repeat(1, self.c_out // self.groups, 1, 1)  # (3, C_out, V, V)
        adjacency = tiled / (tiled.sum(dim=2, keepdim=True) + 0.001)
        h = self.bn0(self.linear(x))
        out = torch.zeros_like(h[:, : self.c_out])
        for k in range(adjacency.shape[0]):
            h_k = h[:, k * self.c_out : (k + 1) * self.c_out]
            out = out + torch.einsum("nctv,cvw->nctw", h_k, adjacency[k])
        return torch.relu(self.bn(out) + self.down(x))


class SLGCNBlock(nn.Module):
    adjacency_sum: Tensor  # DropGraph neighbourhoods: the sum of the three fixed subsets

    def __init__(self, c_in: int, c_out: int, adjacency: Tensor, config: SLGCNConfig,
                 stride: int, residual: bool, use_drops: bool) -> None:
        super().__init__()
        v = adjacency.shape[-1]
        self.gcn = DecoupledGCN(c_in, c_out, adjacency, config.groups)
        self.attention = STCAttention(c_out, v)
        self.tcn = conv_bn(c_out, c_out, config.temporal_kernel, stride)
        self.residual: nn.Module | None
        if not residual:
            self.residual = None
        elif c_in == c_out and stride == 1:
            self.residual = nn.Identity()
        else:
            self.residual = conv_bn(c_in, c_out, 1, stride)
        self.use_drops = use_drops
        self.block_size = config.block_size
        self.register_buffer("adjacency_sum", adjacency.float().sum(0), persistent=False)

    def forward(self, x: Tensor, keep_prob: float) -> Tensor:
        keep = keep_prob if self.use_drops else 1.0
        y = self.tcn(self.attention(self.gcn(x)))
        y = drops(y, keep, self.adjacency_sum, self.block_size, self.training)
        if self.residual is None:
            return torch.relu(y)
        r = drops(self.residual(x), keep, self.adjacency_sum, self.block_size, self.training)
        return torch.relu(y + r)


class ReferenceSLGCN(SkeletonNet):
    """SL-GCN (and LGF-SLR's per-part streams on a hand layout)."""

    def __init__(self, num_classes: int, layout: str, config: SLGCNConfig) -> None:
        super().__init__(num_classes, layout, config.in_channels, config.num_person,
                         config.widths[-1])
        adjacency = torch.from_numpy(layout_adjacency(get_layout(layout)))
        first_drop = len(config.widths) - config.drop_blocks
        c_in = config.in_channels
        for i, (width, stride) in enumerate(zip(config.widths, config.strides, strict=True)):
            self.stages.append(SLGCNBlock(c_in, width, adjacency, config, stride,
                                          residual=i > 0, use_drops=i >= first_drop))
            c_in = width


# ------------------------------------------------------------------------------ DSTA-SLR
def channel_layer_norm(norm: nn.LayerNorm, x: Tensor) -> Tensor:
    return norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class EdgePrototypes(nn.Module):
    def __init__(self, channels: int, prototypes: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels)
        self.transform = nn.Conv2d(channels, channels, 1)
        self.prototypes = nn.Parameter(torch.randn(channels, prototypes) * 0.02)
        self.scales = nn.Parameter(torch.ones(prototypes))

    def forward(self, x: Tensor) -> Tensor:
        c = x.shape[1]
        h = self.transform(channel_layer_norm(self.norm, x)).permute(0, 2, 3, 1)  # (N, T, V, C)
        affinity = torch.tanh(h @ self.prototypes) / c * self.scales  # (N, T, V, E)
        return (affinity @ self.prototypes.t()).permute(0, 3, 1, 2)


class DynamicSpatialAggregation(nn.Module):
    def __init__(self, c_in: int, channels: int, nodes: int, heads: int, prototypes: int,
                 mlp_ratio: int) -> None:
        super().__init__()
        self.heads = heads
        self.proj = nn.Conv2d(c_in, channels, 1)
        self.bn0 = nn.BatchNorm2d(channels)
        self.norm_attention = nn.LayerNorm(channels)
        self.query_key = nn.Conv2d(channels, 2 * channels, 1)
        self.head_scales = nn.Parameter(torch.ones(heads))
        self.norm_mlp = nn.LayerNorm(channels)
        self.mlp = nn.Sequential(nn.Linear(channels, channels * mlp_ratio), nn.GELU(),
                                 nn.Linear(channels * mlp_ratio, channels))
        self.edge = EdgePrototypes(channels, prototypes)
        self.edge_gate = nn.Parameter(torch.zeros(1))
        self.static_graph = nn.Parameter(
            torch.full((heads, channels // heads, nodes, nodes), 1.0 / nodes))
        self.bn = nn.BatchNorm2d(channels)
        self.down: nn.Module = conv_bn(c_in, channels) if c_in != channels else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        y = self.bn0(self.proj(x))
        c, t = y.shape[1], y.shape[2]
        d = c // self.heads
        edge = self.edge(y) * self.edge_gate
        h = channel_layer_norm(self.norm_attention, y)
        qk = self.query_key(h)
        mixed = []
        for head in range(self.heads):
            part = slice(head * d, (head + 1) * d)
            q, k = qk[:, part], qk[:, c:][:, part]
            graph = torch.einsum("nctu,nctw->nuw", q, k) / (d * t)
            graph = torch.tanh(graph) * self.head_scales[head]
            mixed.append(torch.einsum("nctu,nuw->nctw", h[:, part], graph))
        y = torch.cat(mixed, dim=1) + y
        y = y + self.mlp(self.norm_mlp(y.permute(0, 2, 3, 1))).permute(0, 3, 1, 2) + edge
        per_channel = self.static_graph.reshape(c, *self.static_graph.shape[2:])
        y = torch.einsum("nctv,cvw->nctw", y, per_channel)
        return torch.relu(self.bn(y) + self.down(x))


class MultiScaleTCN(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernels: tuple[int, ...], stride: int) -> None:
        super().__init__()
        width = c_out // len(kernels)
        self.branches = nn.ModuleList(conv_bn(c_in, width, k, stride) for k in kernels)

    def forward(self, x: Tensor, keep_prob: float, adjacency: Tensor, block_size: int) -> Tensor:
        outs = [drops(branch(x), keep_prob, adjacency, block_size, self.training)
                for branch in self.branches]
        return torch.cat(outs, dim=1)


class TemporalSkip(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(c_in, c_out, 1, stride=(stride, 1), groups=c_in)
        self.pointwise = nn.Conv2d(c_out, c_out, 1)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(self.pointwise(self.depthwise(x)))


class DSTAStage(nn.Module):
    adjacency_sum: Tensor

    def __init__(self, c_in: int, c_out: int, adjacency: Tensor, config: DSTAConfig,
                 stride: int, first: bool, use_drops: bool) -> None:
        super().__init__()
        v = adjacency.shape[-1]
        width = c_out if first else c_in
        self.spatial = DynamicSpatialAggregation(c_in, width, v, config.heads,
                                                 config.prototypes, config.mlp_ratio)
        self.attention = STCAttention(width, v)
        depth = config.tcn_depth
        self.tcns = nn.ModuleList(
            MultiScaleTCN(width if i == 0 else c_out, c_out, config.temporal_kernels,
                          stride if i == depth - 1 else 1)
            for i in range(depth)
        )
        self.residual: nn.Module | None
        if first:
            self.residual = None
        elif c_in == c_out and stride == 1:
            self.residual = nn.Identity()
        else:
            self.residual = TemporalSkip(c_in, c_out, stride)
        self.use_drops = use_drops
        self.block_size = config.block_size
        self.register_buffer("adjacency_sum", adjacency.float().sum(0), persistent=False)

    def forward(self, x: Tensor, keep_prob: float) -> Tensor:
        keep = keep_prob if self.use_drops else 1.0
        y = self.attention(self.spatial(x))
        for tcn in self.tcns:
            y = tcn(y, keep, self.adjacency_sum, self.block_size)
        if self.residual is None:
            return torch.relu(y)
        r = drops(self.residual(x), keep, self.adjacency_sum, self.block_size, self.training)
        return torch.relu(y + r)


class ReferenceDSTA(SkeletonNet):
    def __init__(self, num_classes: int, layout: str, config: DSTAConfig) -> None:
        super().__init__(num_classes, layout, config.in_channels, config.num_person,
                         config.widths[-1])
        adjacency = torch.from_numpy(layout_adjacency(get_layout(layout)))
        first_drop = len(config.widths) - config.drop_stages
        c_in = config.in_channels
        for i, (width, stride) in enumerate(zip(config.widths, config.strides, strict=True)):
            self.stages.append(DSTAStage(c_in, width, adjacency, config, stride,
                                         first=i == 0, use_drops=i >= first_drop))
            c_in = width
