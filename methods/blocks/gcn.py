"""Blocks shared by the SAM-SLR lineage models (SL-GCN, DSTA-SLR, LGF-SLR).

Sources (facts only, own implementation):

* STC attention: ``jackyjsy/CVPR21Chal-SLR`` @ de6c53a, ``SL-GCN/model/decouple_gcn_attn.py``
  (``TCN_GCN_unit``, taken from MS-AAGCN); DSTA-SLR uses the same block.
* DropGraph: ``SL-GCN/model/dropSke.py`` (``DropBlock_Ske``); DropBlock-temporal:
  ``SL-GCN/model/dropT.py`` (``DropBlockT_1d``); keep-probability schedule: ``SL-GCN/main.py``.

All modules take feature maps (N, C, T, V).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from slrbench.datasets.layouts import KeypointLayout, get_layout
from slrbench.errors import SlrbenchError
from slrbench.methods.blocks.graph import layout_adjacency


class STCAttention(nn.Module):
    """Spatial, temporal and channel gates, each applied residually: y <- y * g + y.

    * spatial: sigmoid(Conv1d(C -> 1, kernel k over joints)) on time-averaged features, with
      k = V, or V - 1 when V is even ("same" padding either way);
    * temporal: sigmoid(Conv1d(C -> 1, kernel 9)) on joint-averaged features, zero-initialised
      (the gate starts at exactly 0.5);
    * channel: squeeze-excitation with reduction 2, second FC zero-initialised (starts at 0.5).
    """

    def __init__(self, channels: int, num_nodes: int, temporal_kernel: int = 9) -> None:
        super().__init__()
        ker = num_nodes - 1 if num_nodes % 2 == 0 else num_nodes  # odd kernel keeps "same"
        ker = max(ker, 1)
        self.spatial_kernel = ker
        self.conv_sa = nn.Conv1d(channels, 1, ker, padding=(ker - 1) // 2)
        self.conv_ta = nn.Conv1d(channels, 1, temporal_kernel, padding=(temporal_kernel - 1) // 2)
        hidden = channels // 2
        self.fc1c = nn.Linear(channels, hidden)
        self.fc2c = nn.Linear(hidden, channels)
        assert self.conv_sa.bias is not None and self.conv_ta.bias is not None  # bias=True
        nn.init.xavier_normal_(self.conv_sa.weight)
        nn.init.zeros_(self.conv_sa.bias)
        nn.init.zeros_(self.conv_ta.weight)
        nn.init.zeros_(self.conv_ta.bias)
        nn.init.kaiming_normal_(self.fc1c.weight)
        nn.init.zeros_(self.fc1c.bias)
        nn.init.zeros_(self.fc2c.weight)
        nn.init.zeros_(self.fc2c.bias)

    def forward(self, y: Tensor) -> Tensor:
        # The three residual gates multiply: y * (1 + g_s[v]) * (1 + g_t[t]) * (1 + g_c[c]). The
        # temporal and channel gates only need means of that product, which come from the
        # spatially gated map and small factors, so the full-size map is written twice instead of
        # six times (the same for the gradients autograd computes).
        spatial = 1.0 + torch.sigmoid(self.conv_sa(y.mean(dim=2)))  # (N, 1, V)
        y = y * spatial.unsqueeze(2)
        joint_mean = y.mean(dim=3)  # (N, C, T)
        temporal = 1.0 + torch.sigmoid(self.conv_ta(joint_mean))  # (N, 1, T)
        pooled = (joint_mean * temporal).mean(dim=2)  # mean over T and V of the gated map
        channel = 1.0 + torch.sigmoid(self.fc2c(F.relu(self.fc1c(pooled))))  # (N, C)
        return y * (temporal * channel.unsqueeze(2)).unsqueeze(3)  # (N, C, T, 1) factor


def _check_keep(keep_prob: float) -> None:
    if not 0.0 < keep_prob <= 1.0:
        raise SlrbenchError(f"keep_prob: found {keep_prob}; expected 0 < keep_prob <= 1")


def _normalised(activity: Tensor) -> Tensor:
    """Rescale mean |x| per joint or frame so that its batch mean is 1."""
    return activity * (activity.numel() / activity.sum().clamp_min(1e-12))


def _activity(x: Tensor, dims: tuple[int, ...]) -> Tensor:
    """Mean |x| over ``dims``, rescaled so its batch mean is 1 (no gradient)."""
    return _normalised(x.detach().abs().mean(dim=dims))


def _keep_scale(mask: Tensor) -> Tensor:
    # Keep the expected activation: #mask entries / #kept entries (0 kept: the output is zeros).
    return mask.numel() / mask.sum().clamp_min(1.0)


def _rescale(x: Tensor, mask: Tensor) -> Tensor:
    # Scaling the small 0/1 mask first gives the same numbers with one pass over x.
    return x * (mask * _keep_scale(mask))


def _joint_keep_mask(activity: Tensor, keep_prob: float, adjacency: Tensor) -> Tensor:
    """DropGraph's (N, V) 0/1 keep mask from the normalised joint activity (one bernoulli draw
    per entry)."""
    gamma = (1.0 - keep_prob) / (1.0 + DropGraphSpatial.DEGREE_CONSTANT)
    seeds = torch.bernoulli((activity * gamma).clamp(max=1.0))
    hit = seeds @ adjacency.to(activity.dtype)  # spread each seed to its neighbours
    return (hit <= 0.001).to(activity.dtype)


def _frame_keep_mask(activity: Tensor, keep_prob: float, block_size: int) -> Tensor:
    """DropBlockT's (N, T) 0/1 keep mask from the normalised frame activity (one bernoulli draw
    per entry)."""
    t = activity.shape[1]
    gamma = (1.0 - keep_prob) / block_size
    seeds = torch.bernoulli((activity * gamma).clamp(max=1.0)).unsqueeze(1)  # (N, 1, T)
    grown = F.max_pool1d(seeds, kernel_size=block_size, stride=1, padding=block_size // 2)
    return 1.0 - grown[:, 0, :t]  # an even block size pads one extra frame; crop back to T


class DropGraphSpatial(nn.Module):
    """DropGraph over joints (DecoupleGCN-DropGraph, as in SL-GCN's ``DropBlock_Ske``).

    Per sample, seed joints are drawn with probability activity_v * gamma, where activity is
    the normalised mean |x| of the joint and gamma = (1 - keep_prob) / (1 + 1.92) (upstream's
    constant, the mean degree of the NTU graph, used for every graph it was not tuned for).
    A seed and its graph neighbours (non-zero entries of the summed adjacency, self included)
    are zeroed for all channels and frames; the rest is rescaled. ``block_size`` is accepted
    for signature parity with upstream, which ignores it too.
    """

    DEGREE_CONSTANT = 1.92

    def __init__(self, num_point: int, block_size: int = 7) -> None:
        super().__init__()
        self.num_point = num_point
        self.block_size = block_size

    def forward(self, x: Tensor, keep_prob: float, adjacency: Tensor) -> Tensor:
        _check_keep(keep_prob)
        if not self.training or keep_prob >= 1.0:
            return x
        n, _, _, v = x.shape
        mask = _joint_keep_mask(_activity(x, (1, 2)), keep_prob, adjacency)
        return _rescale(x, mask.view(n, 1, 1, v))


class DropBlockTemporal(nn.Module):
    """DropBlock over time (SL-GCN's ``DropBlockT_1d``): seed frames drawn with probability
    activity_t * (1 - keep_prob) / block_size, each seed zeroes ``block_size`` frames centred on
    it for all channels and joints; the rest is rescaled."""

    def __init__(self, block_size: int = 41) -> None:
        super().__init__()
        if block_size < 1:
            raise SlrbenchError(f"block_size: found {block_size}; expected >= 1")
        self.block_size = block_size

    def forward(self, x: Tensor, keep_prob: float) -> Tensor:
        _check_keep(keep_prob)
        if not self.training or keep_prob >= 1.0:
            return x
        n, _, t, _ = x.shape
        mask = _frame_keep_mask(_activity(x, (1, 3)), keep_prob, self.block_size)
        return _rescale(x, mask.view(n, 1, t, 1))


class DropGraphTemporal(nn.Module):
    """DropGraph followed by the temporal DropBlock, ``DropBlockTemporal(DropGraphSpatial(x))``
    with the same random draws in the same order, in two passes over x instead of six.

    Both activities come from one (N, T, V) map of sum_c |x|: the frame activity after
    DropGraph is that map times the joint mask and scale, summed over joints. Both masks then
    scale x together.
    """

    def __init__(self, num_point: int, block_size: int = 41) -> None:
        super().__init__()
        if block_size < 1:
            raise SlrbenchError(f"block_size: found {block_size}; expected >= 1")
        self.num_point = num_point
        self.block_size = block_size

    def forward(self, x: Tensor, keep_prob: float, adjacency: Tensor) -> Tensor:
        _check_keep(keep_prob)
        if not self.training or keep_prob >= 1.0:
            return x
        n, c, t, v = x.shape
        abs_sum = x.detach().abs().sum(dim=1)  # (N, T, V)
        joints = _joint_keep_mask(_normalised(abs_sum.sum(dim=1) / (c * t)), keep_prob, adjacency)
        joints = joints * _keep_scale(joints)
        frame_activity = (abs_sum * joints.unsqueeze(1)).sum(dim=2) / (c * v)
        frames = _frame_keep_mask(_normalised(frame_activity), keep_prob, self.block_size)
        frames = frames * _keep_scale(frames)
        return x * (frames.view(n, 1, t, 1) * joints.view(n, 1, 1, v))


def keep_prob_schedule(
    epoch: int, start: float = 1.0, end: float = 0.9, decay_epochs: int = 100
) -> float:
    """Linear from ``start`` at epoch 0 to ``end`` at ``decay_epochs``, then constant
    (SL-GCN ``main.py``: keep = 1 - (1 - keep_rate) * epoch / 100 for epoch < 100)."""
    if decay_epochs <= 0 or epoch >= decay_epochs:
        return float(end)
    return float(start + (end - start) * max(epoch, 0) / decay_epochs)


def conv_init(conv: nn.Conv2d) -> None:
    nn.init.kaiming_normal_(conv.weight, mode="fan_out")
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


def batch_norm(channels: int, gamma: float = 1.0) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(channels)
    nn.init.constant_(bn.weight, gamma)
    nn.init.zeros_(bn.bias)
    return bn


def conv_bn(c_in: int, c_out: int, kernel: int = 1, stride: int = 1) -> nn.Sequential:
    """Temporal (kernel x 1) convolution followed by BN, padded to keep T (before stride)."""
    conv = nn.Conv2d(c_in, c_out, (kernel, 1), stride=(stride, 1), padding=((kernel - 1) // 2, 0))
    conv_init(conv)
    return nn.Sequential(conv, batch_norm(c_out))


def count_trainable_parameters(model: nn.Module) -> int:
    """Number of parameter entries with ``requires_grad`` (buffers never count)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class SkeletonInputNorm(nn.Module):
    """SL-GCN-family input stem: checks (N, C, T, V, M), applies BN per (person, joint, channel)
    over N and T, and folds persons into the batch: returns (N*M, C, T, V)."""

    def __init__(self, model_name: str, in_channels: int, num_nodes: int, num_person: int) -> None:
        super().__init__()
        self.model_name = model_name
        self.expected = (in_channels, num_nodes, num_person)
        self.bn = nn.BatchNorm1d(num_person * num_nodes * in_channels)
        nn.init.ones_(self.bn.weight)
        nn.init.zeros_(self.bn.bias)

    def forward(self, x: Tensor) -> Tensor:
        n, c, t, v, m = x.shape
        if (c, v, m) != self.expected:
            c0, v0, m0 = self.expected
            raise SlrbenchError(
                f"{self.model_name} input: shape {tuple(x.shape)}; "
                f"expected (N, {c0}, T, {v0}, {m0})"
            )
        x = x.permute(0, 4, 3, 1, 2).reshape(n, m * v * c, t)
        x = self.bn(x)
        return x.view(n, m, v, c, t).permute(0, 1, 3, 4, 2).reshape(n * m, c, t, v)


class SkeletonGCN(nn.Module):
    """The SL-GCN-family frame over (N, C, T, V, M) inputs: input BN stem, a stack of stages
    built by the subclass (`build_stages`), pooling over persons, time and joints, and a
    linear head. ``forward(x, keep_prob)`` -> logits (N, K); each stage applies its drops
    only if it has them (identity in eval mode)."""

    model_name = "skeleton-gcn"

    def __init__(self, num_classes: int, layout: KeypointLayout | str, config: Any) -> None:
        super().__init__()
        if num_classes < 1:
            raise SlrbenchError(f"num_classes: found {num_classes}; expected >= 1")
        self.layout = get_layout(layout)
        self.config = config
        self.num_classes = num_classes
        c = config.in_channels
        self.input_norm = SkeletonInputNorm(self.model_name, c, self.layout.num_nodes,
                                            config.num_person)
        adjacency = torch.from_numpy(layout_adjacency(self.layout))
        self.stages = nn.ModuleList(self.build_stages(adjacency, c))
        self.fc = nn.Linear(config.widths[-1], num_classes)
        nn.init.normal_(self.fc.weight, 0.0, math.sqrt(2.0 / num_classes))

    def build_stages(self, adjacency: Tensor, in_channels: int) -> list[nn.Module]:
        raise NotImplementedError

    def forward(self, x: Tensor, keep_prob: float = 1.0) -> Tensor:
        x = self.input_norm(x)
        for stage in self.stages:
            x = stage(x, keep_prob)
        n_m, channels = x.shape[:2]
        m = self.config.num_person
        # Mean over time and joints, then over persons.
        return self.fc(x.reshape(n_m // m, m, channels, -1).mean(dim=3).mean(dim=1))
