"""3-D CNN building blocks of configurable width for video and heatmap-volume pathways
(docs/methods/camfuse.md#architecture).

Own implementation of two block families, from facts only:

* ``SeparableConv3d`` / ``S3DBlock``: S3D-style separable convolution, a (1, k, k) spatial conv
  followed by a (kt, 1, 1) temporal conv, each with BatchNorm; the block is residual.
* ``Bottleneck3d``: the ResNet3D bottleneck of the SlowOnly / slow pathway (pyskl
  ``resnet3d_slowfast.py`` facts: 1x1x1 -> (1, 3, 3) -> 1x1x1, expansion 4, the first conv
  inflated to (3, 1, 1) in the deeper stages, spatial stride on the (1, 3, 3) conv).

``Pathway3d`` chains a stem and stages of these blocks and exposes the stages one by one, so a
two-pathway network can run stage i of both, exchange information, then run stage i + 1.

``StagedBackbone`` is the same idea without a separate stem; ``s3d_backbone`` builds the full S3D
of NLA-SLR's VKNet (Inception-style ``MixedBlock`` stages, docs/methods/nla.md#architecture) and
``s3d_lite_backbone`` its scaled-down version (docs/methods/nla.md#presets).

All modules take batches (N, C, T, H, W).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import torch
from torch import Tensor, nn

from slrbench.errors import SlrbenchError

Triple = tuple[int, int, int]
BLOCK_KINDS = ("s3d", "bottleneck")
BOTTLENECK_EXPANSION = 4


def _triple(value: int | Sequence[int], name: str) -> Triple:
    if isinstance(value, int):
        return (value, value, value)
    values = tuple(int(v) for v in value)
    if len(values) != 3:
        raise SlrbenchError(f"{name}: found {list(values)}; expected an int or 3 ints (t, h, w)")
    return (values[0], values[1], values[2])


def _same_padding(kernel: Triple) -> Triple:
    return (kernel[0] // 2, kernel[1] // 2, kernel[2] // 2)


def conv3d_bn_relu(
    c_in: int,
    c_out: int,
    kernel: int | Sequence[int] = 1,
    stride: int | Sequence[int] = 1,
    relu: bool = True,
) -> nn.Sequential:
    """Conv3d (no bias, "same" padding k // 2 per axis) + BatchNorm3d (+ ReLU)."""
    k, s = _triple(kernel, "kernel"), _triple(stride, "stride")
    layers: list[nn.Module] = [
        nn.Conv3d(c_in, c_out, k, stride=s, padding=_same_padding(k), bias=False),
        nn.BatchNorm3d(c_out),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class SeparableConv3d(nn.Module):
    """S3D separable conv: (1, k, k) spatial conv (spatial stride) + BN + ReLU, then (kt, 1, 1)
    temporal conv (temporal stride) + BN, + ReLU when ``relu``."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int = 3,
        temporal_kernel: int = 3,
        stride: int = 1,
        temporal_stride: int = 1,
        relu: bool = True,
    ) -> None:
        super().__init__()
        self.spatial = conv3d_bn_relu(c_in, c_out, (1, kernel, kernel), (1, stride, stride))
        self.temporal = conv3d_bn_relu(
            c_out, c_out, (temporal_kernel, 1, 1), (temporal_stride, 1, 1), relu=relu
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.temporal(self.spatial(x))


def _shortcut(c_in: int, c_out: int, stride: int) -> nn.Module:
    # Projection only where the shape changes; otherwise the identity keeps the block cheap.
    if c_in == c_out and stride == 1:
        return nn.Identity()
    return conv3d_bn_relu(c_in, c_out, 1, (1, stride, stride), relu=False)


def _last_bn(seq: nn.Sequential) -> nn.BatchNorm3d:
    bn = seq[1]
    assert isinstance(bn, nn.BatchNorm3d)  # conv3d_bn_relu: conv, BN[, ReLU]
    return bn


class S3DBlock(nn.Module):
    """Residual block of two separable convs: ReLU(sep2(sep1(x)) + shortcut(x)).

    ``sep1`` carries the spatial stride and the width change; ``sep2`` ends without ReLU so the
    sum is rectified once. The shortcut is a strided 1x1x1 conv + BN when the shape changes.
    """

    def __init__(self, c_in: int, c_out: int, stride: int = 1, temporal_kernel: int = 3,
                 zero_init_residual: bool = False) -> None:
        super().__init__()
        self.sep1 = SeparableConv3d(c_in, c_out, 3, temporal_kernel, stride=stride)
        self.sep2 = SeparableConv3d(c_out, c_out, 3, temporal_kernel, relu=False)
        self.shortcut = _shortcut(c_in, c_out, stride)
        self.relu = nn.ReLU(inplace=True)
        if zero_init_residual:
            nn.init.zeros_(_last_bn(self.sep2.temporal).weight)  # block starts as its shortcut

    def forward(self, x: Tensor) -> Tensor:
        # The BN output is a fresh tensor autograd does not keep: add the shortcut in place.
        return self.relu(self.sep2(self.sep1(x)).add_(self.shortcut(x)))


class Bottleneck3d(nn.Module):
    """ResNet3D bottleneck: 1x1x1 (or (3, 1, 1) when ``inflate``) -> (1, 3, 3) with the spatial
    stride -> 1x1x1 to ``planes * 4``, BN after each, ReLU(main + shortcut)."""

    def __init__(self, c_in: int, planes: int, stride: int = 1, inflate: bool = False,
                 zero_init_residual: bool = False) -> None:
        super().__init__()
        c_out = planes * BOTTLENECK_EXPANSION
        self.conv1 = conv3d_bn_relu(c_in, planes, (3, 1, 1) if inflate else 1)
        self.conv2 = conv3d_bn_relu(planes, planes, (1, 3, 3), (1, stride, stride))
        self.conv3 = conv3d_bn_relu(planes, c_out, 1, relu=False)
        self.shortcut = _shortcut(c_in, c_out, stride)
        self.relu = nn.ReLU(inplace=True)
        if zero_init_residual:
            nn.init.zeros_(_last_bn(self.conv3).weight)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.conv3(self.conv2(self.conv1(x))).add_(self.shortcut(x)))


def check_block_kind(kind: str, field: str) -> None:
    """One-line error unless `kind` names a block family of this module."""
    if kind not in BLOCK_KINDS:
        raise SlrbenchError(f"{field}: found '{kind}'; expected one of {', '.join(BLOCK_KINDS)}")


@dataclass(frozen=True)
class StageSpec:
    """One stage: ``depth`` blocks of ``kind``; the first carries the spatial ``stride``.

    ``width`` is the output width of an ``s3d`` stage and the bottleneck width (``planes``,
    output ``4 * width``) of a ``bottleneck`` stage. ``inflate`` (bottleneck only) makes every
    block's first conv temporal (3, 1, 1).
    """

    kind: str
    depth: int
    width: int
    stride: int = 1
    inflate: bool = False

    def __post_init__(self) -> None:
        check_block_kind(self.kind, "stage kind")
        if self.depth < 1 or self.width < 1 or self.stride < 1:
            raise SlrbenchError(
                f"stage: found depth {self.depth}, width {self.width}, stride {self.stride}; "
                "expected all >= 1"
            )

    @property
    def out_channels(self) -> int:
        return self.width * (BOTTLENECK_EXPANSION if self.kind == "bottleneck" else 1)


def _conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


class Pathway3d(nn.Module):
    """Stem (conv + BN + ReLU, optional (1, 3, 3) max-pool) followed by ``stages``.

    ``forward(x)`` returns the last stage's map; ``forward_stages(x)`` every stage's. A caller
    that interleaves two pathways runs ``stem`` and then ``stages[i]`` itself.
    """

    def __init__(
        self,
        in_channels: int,
        stem_channels: int,
        stages: Sequence[StageSpec],
        stem_kernel: int | Sequence[int] = (1, 7, 7),
        stem_stride: int | Sequence[int] = (1, 2, 2),
        stem_pool_stride: int | None = 2,
        temporal_kernel: int = 3,
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        if not stages:
            raise SlrbenchError("pathway stages: found none; expected at least one stage")
        if in_channels < 1 or stem_channels < 1:
            raise SlrbenchError(
                f"pathway: found in_channels {in_channels}, stem_channels {stem_channels}; "
                "expected both >= 1"
            )
        if stem_pool_stride is not None and stem_pool_stride < 1:
            raise SlrbenchError(
                f"stem_pool_stride: found {stem_pool_stride}; expected None or >= 1"
            )
        self.in_channels = in_channels
        self.stem_kernel = _triple(stem_kernel, "stem_kernel")
        self.stem_stride = _triple(stem_stride, "stem_stride")
        self.stem_pool_stride = stem_pool_stride
        self.temporal_kernel = temporal_kernel
        self.specs = tuple(stages)
        stem: list[nn.Module] = [
            conv3d_bn_relu(in_channels, stem_channels, self.stem_kernel, self.stem_stride)
        ]
        if stem_pool_stride is not None:
            stem.append(nn.MaxPool3d((1, 3, 3), (1, stem_pool_stride, stem_pool_stride),
                                     (0, 1, 1)))
        self.stem = nn.Sequential(*stem)
        self.stages = nn.ModuleList()
        self.out_channels: list[int] = []
        c_in = stem_channels
        for spec in self.specs:
            blocks: list[nn.Module] = []
            for b in range(spec.depth):
                stride = spec.stride if b == 0 else 1
                if spec.kind == "s3d":
                    blocks.append(S3DBlock(c_in, spec.width, stride, temporal_kernel,
                                           zero_init_residual))
                else:
                    blocks.append(Bottleneck3d(c_in, spec.width, stride, spec.inflate,
                                               zero_init_residual))
                c_in = spec.out_channels
            self.stages.append(nn.Sequential(*blocks))
            self.out_channels.append(c_in)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Kaiming-normal (fan_out, ReLU) convs as in ResNet/mmcv; BN affine weights keep the
        # values set by the blocks (1, or 0 for a zero-initialised residual BN).
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def feature_sizes(self, t: int, h: int, w: int) -> list[Triple]:
        """(T, H, W) of each stage's output for an input of T x H x W (conv arithmetic)."""
        (kt, kh, kw), (st, sh, sw) = self.stem_kernel, self.stem_stride
        t = _conv_out(t, kt, st, kt // 2)
        h, w = _conv_out(h, kh, sh, kh // 2), _conv_out(w, kw, sw, kw // 2)
        if self.stem_pool_stride is not None:
            h, w = _conv_out(h, 3, self.stem_pool_stride, 1), _conv_out(w, 3,
                                                                       self.stem_pool_stride, 1)
        sizes = []
        for spec in self.specs:
            h, w = _conv_out(h, 3, spec.stride, 1), _conv_out(w, 3, spec.stride, 1)
            sizes.append((t, h, w))
        return sizes

    def forward_stages(self, x: Tensor) -> list[Tensor]:
        outputs = []
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
            outputs.append(x)
        return outputs

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return x


def resnet3d50_slow(in_channels: int = 3, zero_init_residual: bool = True) -> Pathway3d:
    """ResNet3D-50 slow pathway (RGBPoseConv3D's RGB pathway, docs/methods/camfuse.md#base):
    conv1 (1, 7, 7) stride 2 + max-pool, stages (3, 4, 6, 3), widths 64..512 (output 2048),
    spatial strides (1, 2, 2, 2), temporal inflation in stages 3-4 only."""
    stages = [
        StageSpec("bottleneck", depth, 64 * 2**i, 1 if i == 0 else 2, inflate=i >= 2)
        for i, depth in enumerate((3, 4, 6, 3))
    ]
    return Pathway3d(in_channels, 64, stages, (1, 7, 7), (1, 2, 2), 2,
                     zero_init_residual=zero_init_residual)


def s3d_lite(
    in_channels: int,
    widths: Sequence[int],
    depths: Sequence[int] | None = None,
    strides: Sequence[int] | None = None,
    stem_channels: int | None = None,
    stem_kernel: int | Sequence[int] = (1, 5, 5),
    stem_stride: int | Sequence[int] = (1, 2, 2),
    stem_pool_stride: int | None = 2,
    temporal_kernel: int = 3,
) -> Pathway3d:
    """Separable-3D pathway of ``S3DBlock`` stages of the given widths (default: one block per
    stage, spatial strides (1, 2, 2, ...), stem width = first stage width)."""
    n = len(widths)
    depths = tuple(depths) if depths is not None else (1,) * n
    strides = tuple(strides) if strides is not None else (1,) + (2,) * (n - 1)
    if n == 0 or len(depths) != n or len(strides) != n:
        raise SlrbenchError(
            f"s3d_lite: found {n} widths, {len(depths)} depths, {len(strides)} strides; "
            "expected the same non-zero number"
        )
    stages = [StageSpec("s3d", d, w, s) for w, d, s in zip(widths, depths, strides)]
    return Pathway3d(in_channels, stem_channels or widths[0], stages, stem_kernel, stem_stride,
                     stem_pool_stride, temporal_kernel)


# ------------------------------------------------------------------ staged backbones (NLA-SLR)
# Facts: docs/methods/nla.md#architecture (S3D as NLA-SLR builds it, kylemin/S3D layer shapes).
S3D_STAGE_CHANNELS = (64, 192, 480, 832, 1024)
S3D_BN_EPS = 1e-3
S3D_BN_MOMENTUM = 1e-3  # torch's convention (1 - TF decay 0.999)

# GoogLeNet / I3D Inception widths per Mixed block: (1x1, 3x3 reduce, 3x3, second 3x3 reduce,
# second 3x3, pool projection); S3D makes both 3x3 branches separable.
S3D_MIXED: dict[str, tuple[int, int, int, int, int, int]] = {
    "3b": (64, 96, 128, 16, 32, 32),
    "3c": (128, 128, 192, 32, 96, 64),
    "4b": (192, 96, 208, 16, 48, 64),
    "4c": (160, 112, 224, 24, 64, 64),
    "4d": (128, 128, 256, 24, 64, 64),
    "4e": (112, 144, 288, 32, 64, 64),
    "4f": (256, 160, 320, 32, 128, 128),
    "5b": (256, 160, 320, 32, 128, 128),
    "5c": (384, 192, 384, 48, 128, 128),
}


class MixedBlock(nn.Module):
    """S3D "Mixed" (Inception) block: four parallel branches concatenated on channels -
    1x1x1; 1x1x1 then separable 3x3x3; 1x1x1 then separable 3x3x3; 3x3x3 max-pool (stride 1)
    then 1x1x1. Every conv is followed by BN + ReLU."""

    def __init__(self, c_in: int, widths: Sequence[int]) -> None:
        super().__init__()
        if len(widths) != 6 or min(widths) < 1:
            raise SlrbenchError(f"mixed block widths: found {list(widths)}; expected 6 "
                                "integers >= 1")
        b0, b1_reduce, b1, b2_reduce, b2, b3 = widths
        self.branch0 = conv3d_bn_relu(c_in, b0, 1)
        self.branch1 = nn.Sequential(conv3d_bn_relu(c_in, b1_reduce, 1),
                                     SeparableConv3d(b1_reduce, b1, 3, 3))
        self.branch2 = nn.Sequential(conv3d_bn_relu(c_in, b2_reduce, 1),
                                     SeparableConv3d(b2_reduce, b2, 3, 3))
        self.branch3 = nn.Sequential(nn.MaxPool3d(3, 1, 1), conv3d_bn_relu(c_in, b3, 1))
        self.out_channels = b0 + b1 + b2 + b3

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)], 1)


def set_batchnorm(module: nn.Module, eps: float, momentum: float) -> None:
    """Set eps and momentum of every BatchNorm in `module` (the blocks above use torch's
    defaults; S3D's Kinetics weights were trained with eps 1e-3, momentum 1e-3)."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eps, m.momentum = eps, momentum


class StagedBackbone(nn.Module):
    """A backbone as a list of stages c1..cN. A multi-stream network runs ``stages[i]`` of each
    stream itself and exchanges information between stages; ``forward_stages`` and
    ``forward`` run one stream alone."""

    def __init__(self, stages: Sequence[nn.Module], out_channels: Sequence[int]) -> None:
        super().__init__()
        if not stages or len(stages) != len(out_channels):
            raise SlrbenchError(f"staged backbone: found {len(stages)} stages and "
                                f"{len(out_channels)} widths; expected the same non-zero number")
        self.stages = nn.ModuleList(stages)
        self.out_channels = [int(c) for c in out_channels]

    def forward_stages(self, x: Tensor) -> list[Tensor]:
        outputs = []
        for stage in self.stages:
            x = stage(x)
            outputs.append(x)
        return outputs

    def forward(self, x: Tensor) -> Tensor:
        for stage in self.stages:
            x = stage(x)
        return x


def s3d_backbone(in_channels: int = 3) -> StagedBackbone:
    """The full S3D feature extractor (no classifier) in five stages:

    * c1: separable 7x7x7 stem, stride 2 in space and time (64);
    * c2: max-pool (1, 3, 3) / (1, 2, 2), 1x1x1 conv (64), separable 3x3x3 (192);
    * c3: max-pool (1, 3, 3) / (1, 2, 2), Mixed 3b-3c (256, 480);
    * c4: max-pool 3x3x3 / 2, Mixed 4b-4f (512, 512, 512, 528, 832);
    * c5: max-pool 2x2x2 / 2, Mixed 5b-5c (832, 1024).

    Convs without bias, BN eps 1e-3 and momentum 1e-3, torch's default init (upstream's init
    of anything the Kinetics weights do not cover, e.g. a 63-channel heatmap stem).
    """
    if in_channels < 1:
        raise SlrbenchError(f"s3d in_channels: found {in_channels}; expected >= 1")

    def mixed(names: Sequence[str], c_in: int) -> tuple[list[nn.Module], int]:
        blocks: list[nn.Module] = []
        for name in names:
            block = MixedBlock(c_in, S3D_MIXED[name])
            blocks.append(block)
            c_in = block.out_channels
        return blocks, c_in

    def spatial_pool() -> nn.Module:
        return nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1))

    c3, c_3 = mixed(("3b", "3c"), 192)
    c4, c_4 = mixed(("4b", "4c", "4d", "4e", "4f"), c_3)
    c5, c_5 = mixed(("5b", "5c"), c_4)
    stages: list[nn.Module] = [
        SeparableConv3d(in_channels, 64, 7, 7, stride=2, temporal_stride=2),
        nn.Sequential(spatial_pool(), conv3d_bn_relu(64, 64, 1), SeparableConv3d(64, 192, 3, 3)),
        nn.Sequential(spatial_pool(), *c3),
        nn.Sequential(nn.MaxPool3d(3, 2, 1), *c4),
        nn.Sequential(nn.MaxPool3d(2, 2, 0), *c5),
    ]
    assert (64, 192, c_3, c_4, c_5) == S3D_STAGE_CHANNELS  # the table above is self-consistent
    backbone = StagedBackbone(stages, S3D_STAGE_CHANNELS)
    set_batchnorm(backbone, S3D_BN_EPS, S3D_BN_MOMENTUM)
    return backbone


def s3d_lite_backbone(in_channels: int, widths: Sequence[int], stem_kernel: int = 5,
                      temporal_kernel: int = 3) -> StagedBackbone:
    """Scaled-down S3D in ``len(widths)`` stages: c1 a separable stem (``stem_kernel`` squared,
    stride 2 in space and time, ``widths[0]`` channels), then one residual ``S3DBlock`` of
    spatial stride 2 per further width. Kaiming-normal convs as in ``Pathway3d``."""
    widths = tuple(int(w) for w in widths)
    if len(widths) < 2 or min(widths) < 1 or in_channels < 1:
        raise SlrbenchError(f"s3d_lite backbone: found in_channels {in_channels}, widths "
                            f"{list(widths)}; expected >= 1 and at least 2 widths >= 1")
    stages: list[nn.Module] = [SeparableConv3d(in_channels, widths[0], stem_kernel,
                                               temporal_kernel, stride=2, temporal_stride=2)]
    stages += [S3DBlock(c_in, c_out, 2, temporal_kernel) for c_in, c_out in pairwise(widths)]
    backbone = StagedBackbone(stages, widths)
    for m in backbone.modules():
        if isinstance(m, nn.Conv3d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    return backbone
