"""DSTA-SLR: dynamic spatial-temporal aggregation network (docs/methods/dsta.md#architecture).

Native re-implementation of ``Model`` in ``hulianyuyy/DSTA-SLR`` @ 0526b3a, ``model/fstgan.py``
(arXiv 2403.12519, LREC-COLING 2024). The ``paper`` preset reproduces the upstream trainable
parameter count exactly (8,191,286 at K = 2000 on ``samslr_27``).

One stage = dynamic spatial aggregation -> STC attention -> three stacked multi-scale temporal
convolutions (kernels 5 and 7, no nonlinearity between them), plus a residual path; output
ReLU(sum). The spatial module keeps its input width (stage 0 maps 3 -> widths[0]); the first
temporal convolution changes the width and the last one carries the stride.

Differences that do not change the function or the trainable parameters:

* the C_in -> C linear map of the spatial module (upstream: an einsum weight plus a bias
  tensor) is a 1x1 convolution with the same initialisation;
* the per-stage summed adjacency that upstream keeps as a frozen ``nn.Parameter`` (used by
  DropGraph only) is a non-persistent buffer, so it is neither trainable nor in the state dict;
* DropGraph and DropBlockT run as one stateless ``DropGraphTemporal`` per multi-scale
  convolution, serving both branches (each call still draws its own masks, in upstream's order);
* the spatial module computes its LayerNorms, MLP and edge branch on one channels-last copy of
  the features, and query and key as two convolutions, so the joint attention and mixing are
  batched matmuls on views (same numbers up to float rounding, fewer copies;
  benchmarks/train_bench.py).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from slrbench.datasets.layouts import KeypointLayout
from slrbench.errors import SlrbenchError
from slrbench.methods.blocks.gcn import (
    DropGraphTemporal,
    SkeletonGCN,
    STCAttention,
    batch_norm,
    conv_bn,
)

__all__ = [
    "DSTA",
    "PRESETS",
    "DSTAConfig",
    "DynamicSpatialAggregation",
    "EdgePrototypes",
    "MultiScaleTCN",
    "build_dsta",
]


@dataclass(frozen=True)
class DSTAConfig:
    """Architecture of one DSTA-SLR network.

    ``widths``/``strides``: output width and temporal stride per stage. ``heads``: joint-attention
    heads (also the groups of the static graph). ``drop_stages``: how many final stages apply
    DropGraph + DropBlockT (paper: 2 of 4). ``prototypes``: edge prototypes of the
    domain-knowledge branch. ``tcn_depth``: stacked multi-scale temporal convolutions per stage.
    """

    widths: tuple[int, ...]
    strides: tuple[int, ...]
    heads: int = 8
    drop_stages: int = 2
    prototypes: int = 6
    mlp_ratio: int = 4
    temporal_kernels: tuple[int, ...] = (5, 7)
    tcn_depth: int = 3
    block_size: int = 41
    in_channels: int = 3
    num_person: int = 1

    def __post_init__(self) -> None:
        if not self.widths or len(self.widths) != len(self.strides):
            raise SlrbenchError(
                f"dsta config: {len(self.widths)} widths and {len(self.strides)} strides; "
                "expected the same non-zero number"
            )
        if self.heads < 1 or any(w % self.heads for w in self.widths):
            raise SlrbenchError(
                f"dsta config: widths {list(self.widths)} with heads {self.heads}; "
                "expected every width divisible by heads"
            )
        branches = len(self.temporal_kernels)
        if branches < 1 or any(w % branches for w in self.widths):
            raise SlrbenchError(
                f"dsta config: widths {list(self.widths)} with {branches} temporal branches; "
                "expected every width divisible by the number of branches"
            )
        if any(k < 1 or k % 2 == 0 for k in self.temporal_kernels):
            raise SlrbenchError(
                f"dsta config: temporal_kernels {list(self.temporal_kernels)}; "
                "expected odd sizes >= 1"
            )
        if not 0 <= self.drop_stages <= len(self.widths):
            raise SlrbenchError(
                f"dsta config: drop_stages {self.drop_stages}; expected 0..{len(self.widths)}"
            )
        if any(s < 1 for s in self.strides) or self.tcn_depth < 1 or self.prototypes < 1:
            raise SlrbenchError(
                f"dsta config: strides {list(self.strides)}, tcn_depth {self.tcn_depth}, "
                f"prototypes {self.prototypes}; expected all >= 1"
            )

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        for key in ("widths", "strides", "temporal_kernels"):
            d[key] = list(d[key])
        return d

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> DSTAConfig:
        values = dict(data)
        for key in ("widths", "strides", "temporal_kernels"):
            if key in values:
                values[key] = tuple(values[key])  # type: ignore[arg-type]
        try:
            return cls(**values)  # type: ignore[arg-type]
        except TypeError as exc:
            raise SlrbenchError(f"dsta config: {exc}; expected fields of DSTAConfig") from None


PRESETS: dict[str, DSTAConfig] = {
    # 160,029 parameters at K = 20 (docs/methods/dsta.md#presets).
    "tiny": DSTAConfig(widths=(16, 32, 64), strides=(1, 2, 2), heads=4),
    # 532,329 parameters at K = 20.
    "tiny-wide": DSTAConfig(widths=(32, 64, 128), strides=(1, 2, 2), heads=8),
    # Upstream config/train.yaml: inner_dim 64, depth 4, drop_layers 2.
    "paper": DSTAConfig(widths=(64, 128, 256, 512), strides=(1, 2, 2, 2), heads=8),
}


def _mlp(channels: int, ratio: int) -> nn.Sequential:
    # Upstream timm-style Mlp: truncated-normal(0.02) weights, zero biases, GELU.
    mlp = nn.Sequential(
        nn.Linear(channels, channels * ratio), nn.GELU(), nn.Linear(channels * ratio, channels)
    )
    for layer in (mlp[0], mlp[2]):
        assert isinstance(layer, nn.Linear)
        nn.init.trunc_normal_(layer.weight, std=0.02)
        nn.init.zeros_(layer.bias)
    return mlp


class EdgePrototypes(nn.Module):
    """Domain-knowledge branch (upstream ``Edge_feature_conv``).

    LayerNorm over channels -> 1x1 conv -> per (frame, joint) affinity to ``prototypes`` learnable
    C-dim prototypes, tanh(<x, p_e>) / C * alpha_e -> reconstruction sum_e affinity_e * p_e.
    Upstream divides *after* the tanh (the paper's notation reads tanh(·/C)); this follows the code.
    """

    def __init__(self, channels: int, prototypes: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels)
        self.transform = nn.Conv2d(channels, channels, 1)
        self.prototypes = nn.Parameter(torch.empty(channels, prototypes))
        nn.init.trunc_normal_(self.prototypes, std=0.02)
        self.scales = nn.Parameter(torch.ones(prototypes))

    def forward(self, x: Tensor) -> Tensor:
        return self.channels_last(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)

    def channels_last(self, x: Tensor) -> Tensor:
        """The branch on (N, T, V, C) features: every step works per (frame, joint) over
        channels, so this layout needs no copies (the 1x1 conv is a linear map)."""
        c = x.shape[-1]
        h = F.linear(self.norm(x), self.transform.weight.flatten(1), self.transform.bias)
        affinity = torch.tanh(h @ self.prototypes) / c * self.scales  # (N, T, V, prototypes)
        return affinity @ self.prototypes.t()


class DynamicSpatialAggregation(nn.Module):
    """Spatial module (upstream ``unit_san``), (N, C_in, T, V) -> (N, C, T, V).

    1. 1x1 projection C_in -> C (+bias) and BN;
    2. input-dependent graph: LayerNorm, 1x1 conv to query and key of ``heads`` heads; per sample
       and head A[u, w] = tanh(<q_u, k_w> over channels and time / (C/heads * T)) * scale_head;
       the normalised features are mixed over joints with it (out_w = sum_u x_u A[u, w]), plus
       the projected features as residual;
    3. LayerNorm + MLP (GELU), residual; plus the edge-prototype branch of the projected
       features times a scalar gate initialised to 0;
    4. static learnable graph per head and channel (init 1/V) applied to all features, BN
       (gamma 1e-6), + shortcut of the input (1x1 conv + BN when widths differ), ReLU.
    """

    def __init__(
        self, c_in: int, channels: int, num_nodes: int, heads: int, prototypes: int, mlp_ratio: int
    ) -> None:
        super().__init__()
        self.heads = heads
        self.proj = nn.Conv2d(c_in, channels, 1)
        assert self.proj.bias is not None  # Conv2d has a bias unless bias=False
        nn.init.normal_(self.proj.weight, 0.0, math.sqrt(0.5 / channels))
        nn.init.constant_(self.proj.bias, 1e-6)
        self.bn0 = batch_norm(channels)
        self.norm_attention = nn.LayerNorm(channels)
        self.query_key = nn.Conv2d(channels, 2 * channels, 1)
        self.head_scales = nn.Parameter(torch.ones(heads))
        self.norm_mlp = nn.LayerNorm(channels)
        self.mlp = _mlp(channels, mlp_ratio)
        self.edge = EdgePrototypes(channels, prototypes)
        self.edge_gate = nn.Parameter(torch.zeros(1))  # the branch starts switched off
        self.static_graph = nn.Parameter(
            torch.full((heads, channels // heads, num_nodes, num_nodes), 1.0 / num_nodes)
        )
        self.bn = batch_norm(channels, 1e-6)  # the module starts close to its shortcut
        self.down: nn.Module = conv_bn(c_in, channels) if c_in != channels else nn.Identity()
        self.relu = nn.ReLU(inplace=True)

    def joint_attention(self, h: Tensor) -> Tensor:
        """Per-sample, per-head joint-to-joint map (N, heads, V, V) of normalised features
        (contiguous (N, C, T, V))."""
        n, c, t, v = h.shape
        d = c // self.heads
        # Query and key as two convolutions (halves of the weight): each output is contiguous,
        # so the contraction over channels and frames is one batched matmul on views.
        weight, bias = self.query_key.weight, self.query_key.bias
        assert bias is not None  # Conv2d has a bias unless bias=False
        q = F.conv2d(h, weight[:c], bias[:c]).view(n * self.heads, d * t, v)
        k = F.conv2d(h, weight[c:], bias[c:]).view(n * self.heads, d * t, v)
        affinity = (q.transpose(1, 2) @ k).view(n, self.heads, v, v) / (d * t)
        return torch.tanh(affinity) * self.head_scales.view(1, -1, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        y = self.bn0(self.proj(x))
        n, c, t, v = y.shape
        # The LayerNorms, the MLP and the edge branch work per (frame, joint) over channels: one
        # channels-last copy of y serves them without the copies LayerNorm would make of
        # permuted views.
        y_last = y.permute(0, 2, 3, 1).contiguous()  # (N, T, V, C)
        edge = self.edge.channels_last(y_last) * self.edge_gate
        h = self.norm_attention(y_last).permute(0, 3, 1, 2).contiguous()  # (N, C, T, V)
        graph = self.joint_attention(h).view(n * self.heads, v, v)
        mixed = h.view(n * self.heads, -1, v) @ graph  # out_w = sum_u h_u A[u, w]
        y = mixed.view(n, c, t, v) + y
        y = y + (self.mlp(self.norm_mlp(y.permute(0, 2, 3, 1))) + edge).permute(0, 3, 1, 2)
        y = torch.einsum("nhdtv,hdvw->nhdtw", y.view(n, self.heads, -1, t, v), self.static_graph)
        y = self.bn(y.reshape(n, c, t, v))
        # y is the BN output, which autograd does not keep: add the shortcut in place.
        return self.relu(y.add_(self.down(x)))


class MultiScaleTCN(nn.Module):
    """Parallel temporal convolutions (upstream ``MSTCN``): one branch per kernel, each
    C_out / branches channels of conv (k, 1) + BN + DropGraph + DropBlockT, concatenated.
    No nonlinearity."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernels: tuple[int, ...],
        stride: int,
        num_nodes: int,
        block_size: int,
    ) -> None:
        super().__init__()
        width = c_out // len(kernels)
        self.branches = nn.ModuleList(conv_bn(c_in, width, k, stride) for k in kernels)
        self.drop = DropGraphTemporal(num_nodes, block_size)

    def forward(self, x: Tensor, keep_prob: float, adjacency: Tensor) -> Tensor:
        return torch.cat(
            [self.drop(branch(x), keep_prob, adjacency) for branch in self.branches], dim=1
        )


class TemporalSkip(nn.Module):
    """Residual path with a width or stride change (upstream ``unit_tcn_skip``): depthwise
    (kernel 1, stride) conv C_in -> C_out, pointwise 1x1 conv, BN."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        if c_out % c_in:
            raise SlrbenchError(
                f"dsta residual: width {c_in} -> {c_out}; expected the output width to be a "
                "multiple of the input width (depthwise convolution)"
            )
        self.depthwise = nn.Conv2d(c_in, c_out, 1, stride=(stride, 1), groups=c_in)
        self.pointwise = nn.Conv2d(c_out, c_out, 1)
        self.bn = batch_norm(c_out)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(self.pointwise(self.depthwise(x)))


class DSTAStage(nn.Module):
    """Spatial aggregation -> STC attention -> ``tcn_depth`` multi-scale TCNs (the first maps to
    C_out, the last carries the stride), plus a residual with the same drops; ReLU(sum)
    (upstream ``Block``)."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        adjacency: Tensor,
        config: DSTAConfig,
        stride: int = 1,
        first: bool = False,
        drops: bool = False,
    ) -> None:
        super().__init__()
        v = adjacency.shape[-1]
        width = c_out if first else c_in  # the spatial module keeps the input width after stage 0
        self.spatial = DynamicSpatialAggregation(
            c_in, width, v, config.heads, config.prototypes, config.mlp_ratio
        )
        self.attention = STCAttention(width, v)
        depth = config.tcn_depth
        self.tcns = nn.ModuleList(
            MultiScaleTCN(
                width if i == 0 else c_out,
                c_out,
                config.temporal_kernels,
                stride if i == depth - 1 else 1,
                v,
                config.block_size,
            )
            for i in range(depth)
        )
        self.residual: nn.Module | None
        if first:
            self.residual = None  # stage 0 has no residual
        elif c_in == c_out and stride == 1:
            self.residual = nn.Identity()
        else:
            self.residual = TemporalSkip(c_in, c_out, stride)
        self.drop = DropGraphTemporal(v, config.block_size)
        self.drops = drops
        # DropGraph neighbourhoods: sum of the three fixed subsets (the only use of the graph).
        self.register_buffer("adjacency_sum", adjacency.float().sum(0), persistent=False)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor, keep_prob: float = 1.0) -> Tensor:
        keep = keep_prob if self.drops else 1.0
        y = self.attention(self.spatial(x))
        for tcn in self.tcns:
            y = tcn(y, keep, self.adjacency_sum)
        if self.residual is None:
            return self.relu(y)
        r = self.drop(self.residual(x), keep, self.adjacency_sum)
        # y is the last concatenation, which autograd does not keep: add and rectify in place.
        return self.relu(y.add_(r))


class DSTA(SkeletonGCN):
    """DSTA-SLR over (N, C, T, V, M) inputs; ``forward(x, keep_prob)`` -> logits (N, K).

    ``keep_prob`` only reaches the last ``config.drop_stages`` stages (upstream passes 1.0 to
    the others); drops are identity in eval mode.
    """

    model_name = "dsta"

    def __init__(self, num_classes: int, layout: KeypointLayout | str = "samslr_27",
                 config: DSTAConfig = PRESETS["tiny"]) -> None:
        super().__init__(num_classes, layout, config)

    def build_stages(self, adjacency: Tensor, in_channels: int) -> list[nn.Module]:
        config = self.config
        first_drop = len(config.widths) - config.drop_stages
        widths_in = (in_channels, *config.widths[:-1])
        return [
            DSTAStage(c_in, width, adjacency, config, stride, i == 0, i >= first_drop)
            for i, (c_in, width, stride) in enumerate(
                zip(widths_in, config.widths, config.strides, strict=True))
        ]


def build_dsta(preset: str, num_classes: int, layout: KeypointLayout | str = "samslr_27") -> DSTA:
    """DSTA-SLR with a named preset (``tiny``, ``tiny-wide`` or ``paper``)."""
    if preset not in PRESETS:
        raise SlrbenchError(
            f"dsta preset: unknown preset '{preset}'; expected one of {', '.join(PRESETS)}"
        )
    return DSTA(num_classes, layout, PRESETS[preset])
