"""SL-GCN: decoupled spatial-temporal GCN with STC attention and DropGraph
(docs/methods/slgcn.md#architecture).

Native re-implementation of ``Model`` in ``jackyjsy/CVPR21Chal-SLR`` @ de6c53a,
``SL-GCN/model/decouple_gcn_attn.py`` (identical in ``jackyjsy/SAM-SLR-v2`` @ ef0ab36). The
``paper`` preset reproduces the upstream trainable parameter count exactly (3,838,584 at
K = 226 and 4,294,502 at K = 2000 on ``samslr_27``).

Differences that do not change the function or the trainable parameters:

* the C_in -> 3 C_out linear map is a 1x1 convolution with upstream's initialisation
  (N(0, sqrt(0.5 / 3 C_out)) weights, bias 1e-6);
* the per-channel identity stacks and the summed adjacency upstream keeps as frozen
  ``nn.Parameter`` s are derived on the fly or kept as non-persistent buffers, so they are
  neither trainable nor stored in the state dict;
* DecoupleA is normalised per group and broadcast to the channels instead of being tiled
  first (same numbers: channel c uses group c mod groups, as upstream's ``repeat``);
* DropGraph and DropBlockT run as one ``DropGraphTemporal`` per path (same draws in the same
  order, fewer passes over the features; benchmarks/train_bench.py).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
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

NUM_SUBSETS = 3  # identity, inward, outward
NORM_EPS = 0.001  # added to DecoupleA column sums (upstream ``unit_gcn.norm``)


@dataclass(frozen=True)
class SLGCNConfig:
    """Architecture of one SL-GCN.

    ``drop_blocks``: how many final blocks apply DropGraph + DropBlockT (paper: blocks 7–10).
    """

    widths: tuple[int, ...]
    strides: tuple[int, ...]
    groups: int
    drop_blocks: int
    block_size: int = 41
    in_channels: int = 3
    num_person: int = 1
    temporal_kernel: int = 9

    def __post_init__(self) -> None:
        if not self.widths or len(self.widths) != len(self.strides):
            raise SlrbenchError(
                f"slgcn config: {len(self.widths)} widths and {len(self.strides)} strides; "
                "expected the same non-zero number"
            )
        bad = [w for w in self.widths if w < 2 or w % self.groups]
        if self.groups < 1 or bad:
            raise SlrbenchError(
                f"slgcn config: width {bad[0] if bad else '?'} with groups {self.groups}; "
                "expected widths >= 2 divisible by groups"
            )
        if not 0 <= self.drop_blocks <= len(self.widths):
            raise SlrbenchError(
                f"slgcn config: drop_blocks {self.drop_blocks}; expected 0..{len(self.widths)}"
            )
        if any(s < 1 for s in self.strides) or self.temporal_kernel % 2 == 0:
            raise SlrbenchError("slgcn config: strides must be >= 1 and temporal_kernel odd")

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["widths"], d["strides"] = list(self.widths), list(self.strides)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> SLGCNConfig:
        values = dict(data)
        for key in ("widths", "strides"):
            if key in values:
                values[key] = tuple(values[key])  # type: ignore[arg-type]
        try:
            return cls(**values)  # type: ignore[arg-type]
        except TypeError as exc:
            raise SlrbenchError(f"slgcn config: {exc}; expected fields of SLGCNConfig") from None


PRESETS: dict[str, SLGCNConfig] = {
    # docs/methods/slgcn.md#presets: 0.210 M parameters at K = 20 on samslr_27.
    "tiny": SLGCNConfig(widths=(32, 32, 64, 64), strides=(1, 1, 2, 1), groups=8, drop_blocks=2),
    # Upstream Model: l1..l10, stride 2 at l5 and l8, groups 16, keep_prob in l7..l10.
    "paper": SLGCNConfig(
        widths=(64, 64, 64, 64, 128, 128, 128, 256, 256, 256),
        strides=(1, 1, 1, 1, 2, 1, 1, 2, 1, 1),
        groups=16,
        drop_blocks=4,
    ),
}


class DecoupledGCN(nn.Module):
    """Decoupled spatial graph convolution (upstream ``unit_gcn``).

    x -> 1x1 conv to 3 C_out (+bias) -> BN -> split into the 3 subsets -> each subset's
    channels mixed over joints by its group's learnable adjacency (column-normalised every
    forward pass) -> sum over subsets -> BN (gamma 1e-6) -> + shortcut -> ReLU.
    """

    def __init__(self, c_in: int, c_out: int, adjacency: Tensor, groups: int) -> None:
        super().__init__()
        k, _v, _ = adjacency.shape
        self.c_out, self.groups, self.num_subsets = c_out, groups, k
        # (3, groups, V, V), every group starts from the same three matrices.
        self.decouple_a = nn.Parameter(adjacency.float().unsqueeze(1).repeat(1, groups, 1, 1))
        self.linear = nn.Conv2d(c_in, c_out * k, 1)
        assert self.linear.bias is not None  # Conv2d has a bias unless bias=False
        nn.init.normal_(self.linear.weight, 0.0, math.sqrt(0.5 / (c_out * k)))
        nn.init.constant_(self.linear.bias, 1e-6)
        self.bn0 = batch_norm(c_out * k)
        self.bn = batch_norm(c_out, 1e-6)  # the block starts close to its shortcut
        self.down: nn.Module = conv_bn(c_in, c_out) if c_in != c_out else nn.Identity()
        self.relu = nn.ReLU(inplace=True)

    def normalized_adjacency(self) -> Tensor:
        """DecoupleA divided by its column sums + 0.001, (3, groups, V, V)."""
        a = self.decouple_a
        return a / (a.sum(dim=2, keepdim=True) + NORM_EPS)

    def forward(self, x: Tensor) -> Tensor:
        n, _, t, v = x.shape
        y = self.bn0(self.linear(x))
        # Channel c of subset k uses group c mod groups (upstream tiles DecoupleA). One einsum
        # over (subset, joint) per group: measured against per-subset matmuls, a (3 C_out, V, V)
        # tiled adjacency and other batch layouts, it was as fast or faster at every preset shape.
        y = y.view(n, self.num_subsets, self.c_out // self.groups, self.groups, t, v)
        y = torch.einsum("nkrgtv,kgvw->nrgtw", y, self.normalized_adjacency())
        y = self.bn(y.reshape(n, self.c_out, t, v))
        # y is the BN output, which autograd does not keep: add the shortcut in place.
        return self.relu(y.add_(self.down(x)))


class SLGCNBlock(nn.Module):
    """Decoupled GCN -> STC attention -> temporal conv (+BN) -> drops, plus a residual path
    with the same drops; output ReLU(main + residual) (upstream ``TCN_GCN_unit``)."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        adjacency: Tensor,
        groups: int,
        stride: int = 1,
        residual: bool = True,
        drops: bool = False,
        block_size: int = 41,
        temporal_kernel: int = 9,
    ) -> None:
        super().__init__()
        v = adjacency.shape[-1]
        self.gcn = DecoupledGCN(c_in, c_out, adjacency, groups)
        self.attention = STCAttention(c_out, v)
        self.tcn = conv_bn(c_out, c_out, temporal_kernel, stride)
        self.residual: nn.Module | None
        if not residual:
            self.residual = None
        elif c_in == c_out and stride == 1:
            self.residual = nn.Identity()
        else:
            self.residual = conv_bn(c_in, c_out, 1, stride)
        self.drops = drops
        if drops:
            # DropGraph then DropBlockT, on the main path and (own draws) on the residual path.
            self.drop = DropGraphTemporal(v, block_size)
            self.drop_res = DropGraphTemporal(v, block_size)
            # DropGraph neighbourhoods: sum of the three fixed subsets (not the learned ones).
            self.register_buffer("adjacency_sum", adjacency.float().sum(0), persistent=False)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor, keep_prob: float = 1.0) -> Tensor:
        y = self.tcn(self.attention(self.gcn(x)))
        if self.drops:
            y = self.drop(y, keep_prob, self.adjacency_sum)
        if self.residual is None:
            return self.relu(y)
        r = self.residual(x)
        if self.drops:
            r = self.drop_res(r, keep_prob, self.adjacency_sum)
        # y is a fresh temporary (BN or mask output, which autograd does not keep): add in place.
        return self.relu(y.add_(r))


class SLGCN(SkeletonGCN):
    """SL-GCN over (N, C, T, V, M) inputs; ``forward(x, keep_prob)`` -> logits (N, K).

    ``keep_prob`` only reaches the last ``config.drop_blocks`` blocks (upstream passes 1.0 to
    l1..l6); drops are identity in eval mode.
    """

    model_name = "slgcn"

    def __init__(self, num_classes: int, layout: KeypointLayout | str = "samslr_27",
                 config: SLGCNConfig = PRESETS["tiny"]) -> None:
        super().__init__(num_classes, layout, config)

    def build_stages(self, adjacency: Tensor, in_channels: int) -> list[nn.Module]:
        config = self.config
        first_drop = len(config.widths) - config.drop_blocks
        widths_in = (in_channels, *config.widths[:-1])
        return [
            SLGCNBlock(c_in, width, adjacency, config.groups, stride=stride, residual=i > 0,
                       drops=i >= first_drop, block_size=config.block_size,
                       temporal_kernel=config.temporal_kernel)
            for i, (c_in, width, stride) in enumerate(
                zip(widths_in, config.widths, config.strides, strict=True))
        ]

    @property
    def blocks(self) -> nn.ModuleList:
        """The SL-GCN blocks (upstream l1..l10)."""
        return self.stages

    def adjacency_parameters(self) -> list[nn.Parameter]:
        """The learnable DecoupleA tensors, one per block."""
        params = []
        for block in self.blocks:
            assert isinstance(block, SLGCNBlock)  # build_stages makes only SLGCNBlocks
            params.append(block.gcn.decouple_a)
        return params

    def set_adjacency_trainable(self, trainable: bool) -> None:
        """Freeze or release DecoupleA (upstream freezes it during the first
        ``only_train_epoch`` epochs)."""
        for p in self.adjacency_parameters():
            p.requires_grad_(trainable)


def build_slgcn(preset: str, num_classes: int, layout: KeypointLayout | str = "samslr_27") -> SLGCN:
    """SL-GCN with a named preset (``tiny`` or ``paper``)."""
    if preset not in PRESETS:
        raise SlrbenchError(
            f"slgcn preset: unknown preset '{preset}'; expected one of {', '.join(PRESETS)}"
        )
    return SLGCN(num_classes, layout, PRESETS[preset])
