"""CAMFuse (reconstruction): RGBPoseConv3D-style two-pathway 3-D CNN with space-time
cross-attention fusion (ST-CAF) in the deeper stages (docs/methods/camfuse.md#architecture).

No CAMFuse code is published; everything here follows docs/methods/camfuse.md: the base is
pyskl's RGBPoseConv3D (an RGB "slow" pathway and a heatmap "pose" pathway, one linear head
each), and ST-CAF is slrbench's reconstruction (#st-caf). Results from this network are
"CAMFuse (reconstruction)".

Reconstruction decisions (docs/methods/camfuse.md#reconstruction-decisions):

* the shallow laterals are *added* through zero-initialised 1x1x1 convolutions after resampling
  the other pathway's map to this one's (T, H, W) (average pooling where it is larger, nearest
  up-sampling where it is smaller), not concatenated as in pyskl: with zero laterals and zero
  ST-CAF gates a two-pathway model computes exactly its two single pathways, so the two
  single-pathway checkpoints load without any change of shapes;
* ST-CAF: LayerNorm, linear projections to a shared width d, multi-head cross-attention in both
  directions, output projected back and added through a scalar gate initialised to 0;
* the optional fused head reads the concatenated pooled features of both pathways.

Maps are (N, C, T, H, W). ``CAMFuse.forward`` with one input runs that pathway alone (the
single-pathway pre-training stage of the recipe).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from itertools import pairwise
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from slrbench.errors import SlrbenchError
from slrbench.methods.blocks.conv3d import Pathway3d, StageSpec, check_block_kind

Triple = tuple[int, int, int]
StagePairs = tuple[tuple[int, int], ...]
TOKEN_MODES = ("pool", "factorised")
PATHWAYS = ("rgb", "pose", "fusion")


# ------------------------------------------------------------------------------ config
def _ints(value: Any, name: str) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise SlrbenchError(f"camfuse config: {name} is {value!r}; expected a list of integers")
    return tuple(int(v) for v in value)


def _pairs(value: Any, name: str) -> StagePairs:
    if value is None:
        raise SlrbenchError(f"camfuse config: {name} is None; expected a list of stage pairs")
    pairs = []
    for item in value:
        pair = _ints(item, name)
        if len(pair) != 2:
            raise SlrbenchError(
                f"camfuse config: {name} entry {list(pair)}; expected [rgb stage, pose stage]"
            )
        pairs.append((pair[0], pair[1]))
    return tuple(pairs)


@dataclass(frozen=True)
class PathwayConfig:
    """One pathway: stem + stages of ``kind`` blocks (docs/methods/camfuse.md#presets).

    ``widths`` are s3d output widths or bottleneck widths (output 4x); ``strides`` are the
    spatial strides of the stages; ``inflate`` (bottleneck only) marks the stages whose blocks
    start with a (3, 1, 1) temporal conv. ``frames`` and ``size`` are the input clip length and
    spatial size the pathway is built for (used by the positional embeddings).
    """

    kind: str
    widths: tuple[int, ...]
    depths: tuple[int, ...]
    strides: tuple[int, ...]
    in_channels: int
    stem_channels: int
    frames: int
    size: int
    inflate: tuple[bool, ...] = ()
    stem_kernel: Triple = (1, 7, 7)
    stem_stride: Triple = (1, 2, 2)
    stem_pool_stride: int | None = 2
    temporal_kernel: int = 3
    zero_init_residual: bool = False

    def __post_init__(self) -> None:
        check_block_kind(self.kind, "camfuse pathway kind")
        n = len(self.widths)
        inflate = self.inflate or (False,) * n
        object.__setattr__(self, "inflate", tuple(bool(v) for v in inflate))
        if n == 0 or not len(self.depths) == len(self.strides) == len(self.inflate) == n:
            raise SlrbenchError(
                f"camfuse pathway: found {n} widths, {len(self.depths)} depths, "
                f"{len(self.strides)} strides, {len(self.inflate)} inflate flags; "
                "expected the same non-zero number"
            )
        if self.kind == "s3d" and any(self.inflate):
            raise SlrbenchError("camfuse pathway inflate: found True for s3d stages; "
                                "expected inflation on bottleneck stages only")
        if len(self.stem_kernel) != 3 or len(self.stem_stride) != 3:
            raise SlrbenchError(
                f"camfuse pathway stem: found kernel {list(self.stem_kernel)} and stride "
                f"{list(self.stem_stride)}; expected 3 integers (t, h, w) each"
            )
        if min(self.in_channels, self.stem_channels, self.frames, self.size) < 1:
            raise SlrbenchError(
                f"camfuse pathway: found in_channels {self.in_channels}, stem_channels "
                f"{self.stem_channels}, frames {self.frames}, size {self.size}; expected >= 1"
            )

    def stage_specs(self) -> list[StageSpec]:
        return [StageSpec(self.kind, d, w, s, i) for w, d, s, i in
                zip(self.widths, self.depths, self.strides, self.inflate)]

    def build(self) -> Pathway3d:
        return Pathway3d(self.in_channels, self.stem_channels, self.stage_specs(),
                         self.stem_kernel, self.stem_stride, self.stem_pool_stride,
                         self.temporal_kernel, self.zero_init_residual)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("widths", "depths", "strides", "inflate", "stem_kernel", "stem_stride"):
            d[key] = list(d[key])
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], name: str = "pathway") -> PathwayConfig:
        _reject_unknown(cls, data, f"camfuse config {name}")
        values = dict(data)
        for key in ("widths", "depths", "strides", "stem_kernel", "stem_stride"):
            if key in values:
                values[key] = _ints(values[key], f"{name}.{key}")
        if "inflate" in values:
            values["inflate"] = tuple(bool(v) for v in values["inflate"])
        try:
            return cls(**values)
        except TypeError as exc:
            raise SlrbenchError(f"camfuse config {name}: {exc}; expected the fields of "
                                "PathwayConfig") from None


def _reject_unknown(cls: type, data: Mapping[str, Any], where: str) -> None:
    known = [f.name for f in fields(cls)]
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise SlrbenchError(
            f"{where}: unknown field(s) {', '.join(unknown)}; expected some of {', '.join(known)}"
        )


@dataclass(frozen=True)
class CAMFuseConfig:
    """Architecture of one CAMFuse (reconstruction).

    Stage indices are 0-based into each pathway's ``stages`` and name the stage *after* which
    the exchange happens. ``fusion_stages`` (ST-CAF) defaults to the two deepest (rgb, pose)
    pairs, ``lateral_stages`` to each ST-CAF pair one stage shallower (RGBPoseConv3D: laterals
    after RGB layers 2-3 <-> pose layers 1-2, ST-CAF after RGB layers 3-4 <-> pose 2-3).
    ``token_mode``: "pool" averages the longer stream's tokens over time to the shorter's frame
    count before attention (outputs are repeated back); "factorised" attends per frame group
    over space, then per location over time.
    """

    num_classes: int
    rgb: PathwayConfig
    pose: PathwayConfig
    fusion_stages: StagePairs | None = None
    lateral_stages: StagePairs | None = None
    attention_dim: int = 32
    attention_heads: int = 2
    token_mode: str = "pool"
    positional: bool = False
    laterals: bool = True
    fused_head: bool = True
    dropout: float = 0.5

    def __post_init__(self) -> None:
        nr, np_ = len(self.rgb.widths), len(self.pose.widths)
        if self.fusion_stages is None:
            deep = min(2, nr, np_)
            pairs = tuple((nr - deep + k, np_ - deep + k) for k in range(deep))
            object.__setattr__(self, "fusion_stages", pairs)
        fusion = _pairs(self.fusion_stages, "fusion_stages")
        object.__setattr__(self, "fusion_stages", fusion)
        if self.lateral_stages is None:
            shallower = tuple((i - 1, j - 1) for i, j in fusion if i >= 1 and j >= 1)
            object.__setattr__(self, "lateral_stages", shallower)
        lateral = _pairs(self.lateral_stages, "lateral_stages")
        object.__setattr__(self, "lateral_stages", lateral)
        if self.num_classes < 1:
            raise SlrbenchError(f"camfuse config num_classes: found {self.num_classes}; "
                                "expected >= 1")
        for name, pairs in (("fusion_stages", fusion), ("lateral_stages", lateral)):
            bad = [p for p in pairs if not (0 <= p[0] < nr and 0 <= p[1] < np_)]
            if bad or len(set(pairs)) != len(pairs):
                raise SlrbenchError(
                    f"camfuse config {name}: found {[list(p) for p in pairs]}; expected distinct "
                    f"pairs with rgb stage 0..{nr - 1} and pose stage 0..{np_ - 1}"
                )
        points = self.exchange_points()
        if any(b[1] < a[1] for a, b in pairwise(points)):
            raise SlrbenchError(
                f"camfuse config stages: exchange points {[list(p) for p in points]} cross; "
                "expected pose stages non-decreasing along rgb stages"
            )
        if self.token_mode not in TOKEN_MODES:
            raise SlrbenchError(f"camfuse config token_mode: found '{self.token_mode}'; "
                                f"expected one of {', '.join(TOKEN_MODES)}")
        if (self.attention_dim < 1 or self.attention_heads < 1
                or self.attention_dim % self.attention_heads):
            raise SlrbenchError(
                f"camfuse config attention: found dim {self.attention_dim} with "
                f"{self.attention_heads} heads; expected a dim divisible by the heads"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise SlrbenchError(f"camfuse config dropout: found {self.dropout}; "
                                "expected 0 <= dropout < 1")

    def exchange_points(self) -> list[tuple[int, int]]:
        """Sorted (rgb stage, pose stage) pairs where the pathways exchange information."""
        assert self.fusion_stages is not None and self.lateral_stages is not None  # post_init
        used = set(self.fusion_stages) | (set(self.lateral_stages) if self.laterals else set())
        return sorted(used)

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["rgb"], d["pose"] = self.rgb.to_dict(), self.pose.to_dict()
        for key in ("fusion_stages", "lateral_stages"):
            d[key] = [list(p) for p in d[key]]
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CAMFuseConfig:
        _reject_unknown(cls, data, "camfuse config")
        values = dict(data)
        for key in ("rgb", "pose"):
            if key not in values:
                raise SlrbenchError(f"camfuse config: field '{key}' missing; expected a "
                                    "pathway mapping")
            if not isinstance(values[key], PathwayConfig):
                values[key] = PathwayConfig.from_dict(values[key], key)
        for key in ("fusion_stages", "lateral_stages"):
            if values.get(key) is not None:
                values[key] = _pairs(values[key], key)
        try:
            return cls(**values)
        except TypeError as exc:
            raise SlrbenchError(f"camfuse config: {exc}; expected the fields of "
                                "CAMFuseConfig") from None

    @classmethod
    def tiny(cls, num_classes: int, in_channels: int = 27, width: int = 8) -> CAMFuseConfig:
        """docs/methods/camfuse.md#presets: S3D-lite RGB widths w..8w for 8 x 64^2, pose widths
        w/2..4w with a stride-1 stem for 8 x 16^2 heatmaps, ST-CAF after stages 3 and 4 with
        d = 4w and w/4 heads (32 / 2 at w = 8, 64 / 4 at w = 16), laterals after 2 and 3."""
        if width < 2 or width % 2:
            raise SlrbenchError(f"camfuse tiny width: found {width}; expected an even "
                                "integer >= 2")
        w = width
        rgb = PathwayConfig(
            kind="s3d", widths=(w, 2 * w, 4 * w, 8 * w), depths=(1, 1, 1, 1),
            strides=(1, 2, 2, 2), in_channels=3, stem_channels=w, frames=8, size=64,
            stem_kernel=(1, 5, 5), stem_stride=(1, 2, 2), stem_pool_stride=2,
        )  # 64 -> 32 -> 16 | 16, 8, 4, 2
        pose = PathwayConfig(
            kind="s3d", widths=(w // 2, w, 2 * w, 4 * w), depths=(1, 1, 1, 1),
            strides=(1, 2, 2, 2), in_channels=in_channels, stem_channels=w // 2, frames=8,
            size=16, stem_kernel=(1, 3, 3), stem_stride=(1, 1, 1), stem_pool_stride=None,
        )  # 16 | 16, 8, 4, 2: every stage matches its RGB stage spatially
        return cls(num_classes, rgb, pose, fusion_stages=((2, 2), (3, 3)),
                   lateral_stages=((1, 1), (2, 2)), attention_dim=4 * w,
                   attention_heads=max(1, w // 4), token_mode="pool", positional=False)

    @classmethod
    def paper(cls, num_classes: int, in_channels: int = 133) -> CAMFuseConfig:
        """docs/methods/camfuse.md#presets: ResNet3D-50 slow RGB (8 x 224^2, output 2048 at 7^2)
        and the 3-stage pose pathway (4, 6, 3) blocks, base 32, stride-1 (1, 7, 7) stem, no
        pool, spatial strides 2 (32 x 56^2, output 512 at 7^2); ST-CAF after RGB layer3 <-> pose
        layer2 and layer4 <-> layer3 (d = 256, 8 heads, positional embeddings)."""
        rgb = PathwayConfig(
            kind="bottleneck", widths=(64, 128, 256, 512), depths=(3, 4, 6, 3),
            strides=(1, 2, 2, 2), inflate=(False, False, True, True), in_channels=3,
            stem_channels=64, frames=8, size=224, stem_kernel=(1, 7, 7), stem_stride=(1, 2, 2),
            stem_pool_stride=2, zero_init_residual=True,
        )
        pose = PathwayConfig(
            kind="bottleneck", widths=(32, 64, 128), depths=(4, 6, 3), strides=(2, 2, 2),
            # pyskl's pose pathway inflates its last two stages (inflate=(0, 1, 1)).
            inflate=(False, True, True), in_channels=in_channels, stem_channels=32, frames=32,
            size=56, stem_kernel=(1, 7, 7), stem_stride=(1, 1, 1), stem_pool_stride=None,
            zero_init_residual=True,
        )
        return cls(num_classes, rgb, pose, fusion_stages=((2, 1), (3, 2)),
                   lateral_stages=((1, 0), (2, 1)), attention_dim=256, attention_heads=8,
                   token_mode="pool", positional=True, dropout=0.5)


# ------------------------------------------------------------------------------ ST-CAF
def _grid_tokens(x: Tensor) -> Tensor:
    """(N, C, T, H, W) -> (N, T, H, W, C)."""
    return x.permute(0, 2, 3, 4, 1)


def _heads(x: Tensor, heads: int) -> Tensor:
    b, length, d = x.shape
    return x.view(b, length, heads, d // heads).transpose(1, 2)


def _attend(q: Tensor, k: Tensor, v: Tensor, heads: int) -> Tensor:
    """Multi-head softmax attention of (B, Lq, d) queries over (B, Lk, d) keys/values."""
    out = F.scaled_dot_product_attention(_heads(q, heads), _heads(k, heads), _heads(v, heads))
    return out.transpose(1, 2).reshape(q.shape)


def _ratio(big: int, small: int, what: str) -> int:
    if big % small:
        raise SlrbenchError(f"st-caf factorised: {what} {big} and {small}; expected one to "
                            "divide the other")
    return big // small


def _group_frames(x: Tensor, tc: int) -> Tensor:
    """(N, T, H, W, d) -> (N*tc, (T/tc)*H*W, d): consecutive frames share a group."""
    n, t, h, w, d = x.shape
    return x.reshape(n * tc, (t // tc) * h * w, d)


def _group_locations(x: Tensor, hc: int, wc: int) -> Tensor:
    """(N, T, H, W, d) -> (N*hc*wc, T*rh*rw, d): one group per cell of the hc x wc grid."""
    n, t, h, w, d = x.shape
    rh, rw = h // hc, w // wc
    x = x.reshape(n, t, hc, rh, wc, rw, d).permute(0, 2, 4, 1, 3, 5, 6)
    return x.reshape(n * hc * wc, t * rh * rw, d)


def _ungroup_locations(x: Tensor, shape: torch.Size, hc: int, wc: int) -> Tensor:
    n, t, h, w, d = shape
    rh, rw = h // hc, w // wc
    x = x.reshape(n, hc, wc, t, rh, rw, d).permute(0, 3, 1, 4, 2, 5, 6)
    return x.reshape(n, t, h, w, d)


class _Stream(nn.Module):
    """One stream's side of ST-CAF: LayerNorm, query and key/value projections to d, output
    projection back to C, optional factorised (time + space) positional embedding."""

    def __init__(self, channels: int, dim: int, size: Triple | None) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels)
        self.q = nn.Linear(channels, dim)
        self.kv = nn.Linear(channels, 2 * dim)
        self.out = nn.Linear(dim, channels)
        self.pos_time: nn.Parameter | None = None
        self.pos_space: nn.Parameter | None = None
        if size is not None:
            t, h, w = size
            self.pos_time = nn.Parameter(torch.zeros(1, dim, t))
            self.pos_space = nn.Parameter(torch.zeros(1, dim, h, w))
            nn.init.trunc_normal_(self.pos_time, std=0.02)
            nn.init.trunc_normal_(self.pos_space, std=0.02)
        for lin in (self.q, self.kv, self.out):
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)

    def positional(self, t: int, h: int, w: int) -> Tensor | None:
        """(T, H, W, d) embedding; resized (linear / bilinear) when the map's size differs from
        the one it was built for (another input size, or time pooling)."""
        if self.pos_time is None or self.pos_space is None:
            return None
        pt: Tensor = self.pos_time
        ps: Tensor = self.pos_space
        if pt.shape[-1] != t:
            pt = F.interpolate(pt, size=t, mode="linear", align_corners=False)
        if ps.shape[-2:] != (h, w):
            ps = F.interpolate(ps, size=(h, w), mode="bilinear", align_corners=False)
        return pt[0].T[:, None, None, :] + ps[0].permute(1, 2, 0)[None]

    def project(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Map (N, C, T, H, W) -> q, k, v grids (N, T, H, W, d)."""
        tokens = self.norm(_grid_tokens(x))
        q = self.q(tokens)
        k, v = self.kv(tokens).chunk(2, dim=-1)
        pos = self.positional(*x.shape[2:])
        if pos is not None:
            pos = pos.to(q.dtype)  # keeps q/k in the autocast dtype
            q, k = q + pos, k + pos
        return q, k, v


class STCAF(nn.Module):
    """Space-time cross-attention fusion between an RGB map (N, Cr, Tr, Hr, Wr) and a pose map
    (N, Cp, Tp, Hp, Wp) (docs/methods/camfuse.md#st-caf).

    Every T*H*W position is a token. RGB tokens query pose tokens and pose tokens query RGB
    tokens (multi-head scaled dot-product attention in a shared width ``dim``); each direction's
    output is projected back to its stream's channels and added through a scalar gate that
    starts at 0, so a fresh module returns its inputs unchanged. The two maps' sizes need not
    match. ``rgb_size`` / ``pose_size`` (T, H, W) are needed only for ``positional``.
    """

    def __init__(
        self,
        rgb_channels: int,
        pose_channels: int,
        dim: int = 32,
        heads: int = 2,
        token_mode: str = "pool",
        positional: bool = False,
        rgb_size: Triple | None = None,
        pose_size: Triple | None = None,
    ) -> None:
        super().__init__()
        if token_mode not in TOKEN_MODES:
            raise SlrbenchError(f"st-caf token_mode: found '{token_mode}'; expected one of "
                                f"{', '.join(TOKEN_MODES)}")
        if dim < 1 or heads < 1 or dim % heads:
            raise SlrbenchError(f"st-caf: found dim {dim} with {heads} heads; expected a dim "
                                "divisible by the heads")
        if positional and (rgb_size is None or pose_size is None):
            raise SlrbenchError("st-caf positional: found no rgb_size/pose_size; expected "
                                "(T, H, W) of both maps")
        self.dim, self.heads, self.token_mode = dim, heads, token_mode
        self.rgb = _Stream(rgb_channels, dim, rgb_size if positional else None)
        self.pose = _Stream(pose_channels, dim, pose_size if positional else None)
        self.gate_rgb = nn.Parameter(torch.zeros(()))
        self.gate_pose = nn.Parameter(torch.zeros(()))

    def gates(self) -> list[nn.Parameter]:
        return [self.gate_rgb, self.gate_pose]

    def _cross(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """Attention of query grid q (N, Tq, Hq, Wq, d) over key/value grids (N, Tk, Hk, Wk, d);
        returns a grid shaped like q."""
        if self.token_mode == "pool":
            n, d = q.shape[0], q.shape[-1]
            out = _attend(q.reshape(n, -1, d), k.reshape(n, -1, d), v.reshape(n, -1, d),
                          self.heads)
            return out.reshape(q.shape)
        # Factorised: (1) space, within aligned frame groups (the longer stream's frames are
        # grouped by the ratio of the frame counts); (2) time, within aligned location cells of
        # the coarser grid, queried by the step-1 result added to the queries.
        tq, tk = q.shape[1], k.shape[1]
        tc = min(tq, tk)
        _ratio(max(tq, tk), tc, "frame counts")
        a = _attend(_group_frames(q, tc), _group_frames(k, tc), _group_frames(v, tc),
                    self.heads).reshape(q.shape)
        hc, wc = min(q.shape[2], k.shape[2]), min(q.shape[3], k.shape[3])
        _ratio(max(q.shape[2], k.shape[2]), hc, "heights")
        _ratio(max(q.shape[3], k.shape[3]), wc, "widths")
        q2 = q + a
        a = _attend(_group_locations(q2, hc, wc), _group_locations(k, hc, wc),
                    _group_locations(v, hc, wc), self.heads)
        return _ungroup_locations(a, q.shape, hc, wc)

    def forward(self, rgb: Tensor, pose: Tensor) -> tuple[Tensor, Tensor]:
        if rgb.dim() != 5 or pose.dim() != 5 or rgb.shape[0] != pose.shape[0]:
            raise SlrbenchError(f"st-caf: found maps {list(rgb.shape)} and {list(pose.shape)}; "
                                "expected (N, C, T, H, W) with the same N")
        r, p = rgb, pose
        tr, tp = rgb.shape[2], pose.shape[2]
        if self.token_mode == "pool" and tr != tp:
            # Average the longer stream over time to the other's frame count (speed ratio).
            if tp > tr:
                p = F.adaptive_avg_pool3d(pose, (tr, *pose.shape[3:]))
            else:
                r = F.adaptive_avg_pool3d(rgb, (tp, *rgb.shape[3:]))
        qr, kr, vr = self.rgb.project(r)
        qp, kp, vp = self.pose.project(p)
        out_r = self.rgb.out(self._cross(qr, kp, vp)).permute(0, 4, 1, 2, 3)
        out_p = self.pose.out(self._cross(qp, kr, vr)).permute(0, 4, 1, 2, 3)
        # A pooled stream's update is repeated back over its frames.
        if out_r.shape[2] != tr:
            out_r = F.interpolate(out_r, size=rgb.shape[2:], mode="nearest")
        if out_p.shape[2] != tp:
            out_p = F.interpolate(out_p, size=pose.shape[2:], mode="nearest")
        return (rgb + self.gate_rgb * out_r.to(rgb.dtype),
                pose + self.gate_pose * out_p.to(pose.dtype))


# ------------------------------------------------------------------------------ laterals
def _resample(x: Tensor, size: Sequence[int], conv: nn.Module) -> Tensor:
    """``conv`` (1x1x1) of x resampled to ``size``: average-pool the axes where x is larger,
    convolve (on the smaller map: the conv commutes with both resamplings), then nearest
    up-sample the axes where x is smaller."""
    (t, h, w), (st, sh, sw) = x.shape[2:], size
    mid = (min(t, st), min(h, sh), min(w, sw))
    if mid != (t, h, w):
        x = F.adaptive_avg_pool3d(x, mid)
    x = conv(x)
    if mid != tuple(size):
        x = F.interpolate(x, size=tuple(size), mode="nearest")
    return x


class Lateral(nn.Module):
    """Bidirectional additive lateral: rgb += W_p->r resample(pose), pose += W_r->p
    resample(rgb), both 1x1x1 convolutions without bias initialised to zero."""

    def __init__(self, rgb_channels: int, pose_channels: int) -> None:
        super().__init__()
        self.to_rgb = nn.Conv3d(pose_channels, rgb_channels, 1, bias=False)
        self.to_pose = nn.Conv3d(rgb_channels, pose_channels, 1, bias=False)
        nn.init.zeros_(self.to_rgb.weight)
        nn.init.zeros_(self.to_pose.weight)

    def forward(self, rgb: Tensor, pose: Tensor) -> tuple[Tensor, Tensor]:
        # Both updates read the maps from before the exchange.
        return (rgb + _resample(pose, rgb.shape[2:], self.to_rgb),
                pose + _resample(rgb, pose.shape[2:], self.to_pose))


# ------------------------------------------------------------------------------ network
def _key(pair: tuple[int, int]) -> str:
    return f"rgb{pair[0]}_pose{pair[1]}"


def _check_input(x: Tensor, name: str, channels: int) -> None:
    if x.dim() != 5 or x.shape[1] != channels:
        raise SlrbenchError(f"camfuse {name}: found shape {list(x.shape)}; expected "
                            f"(N, {channels}, T, H, W)")


class CAMFuse(nn.Module):
    """CAMFuse (reconstruction) over RGB clips (N, 3, T, H, W) and heatmap volumes
    (N, V, T, h, w); ``forward`` returns logits per head (docs/methods/camfuse.md#architecture).
    """

    model_name = "camfuse"

    def __init__(self, config: CAMFuseConfig) -> None:
        super().__init__()
        self.config = config
        self.rgb = config.rgb.build()
        self.pose = config.pose.build()
        cr, cp = self.rgb.out_channels, self.pose.out_channels
        k = config.num_classes
        self.dropout = nn.Dropout(config.dropout)
        self.rgb_head = nn.Linear(cr[-1], k)
        self.pose_head = nn.Linear(cp[-1], k)
        self.fused_head = nn.Linear(cr[-1] + cp[-1], k) if config.fused_head else None
        for head in (self.rgb_head, self.pose_head, self.fused_head):
            if head is not None:  # as pyskl's heads: N(0, 0.01) weights, zero bias
                nn.init.normal_(head.weight, std=0.01)
                nn.init.zeros_(head.bias)
        assert config.fusion_stages is not None and config.lateral_stages is not None
        self.laterals = nn.ModuleDict()
        if config.laterals:
            for i, j in config.lateral_stages:
                self.laterals[_key((i, j))] = Lateral(cr[i], cp[j])
        rgb_sizes = self.rgb.feature_sizes(config.rgb.frames, config.rgb.size, config.rgb.size)
        pose_sizes = self.pose.feature_sizes(config.pose.frames, config.pose.size,
                                             config.pose.size)
        self.fusions = nn.ModuleDict({
            _key((i, j)): STCAF(cr[i], cp[j], config.attention_dim, config.attention_heads,
                                config.token_mode, config.positional, rgb_sizes[i],
                                pose_sizes[j])
            for i, j in config.fusion_stages
        })
        self.points = config.exchange_points()

    def gates(self) -> list[nn.Parameter]:
        """Every ST-CAF gate (two per fusion point)."""
        return [g for m in self.fusions.values() if isinstance(m, STCAF) for g in m.gates()]

    def pathway_parameters(self, name: str) -> list[nn.Parameter]:
        """Parameters of the "rgb" or "pose" pathway with its head, or of the "fusion" modules
        (laterals, ST-CAF, fused head); the three lists partition ``parameters()``."""
        modules: list[nn.Module | None]
        if name == "rgb":
            modules = [self.rgb, self.rgb_head]
        elif name == "pose":
            modules = [self.pose, self.pose_head]
        elif name == "fusion":
            modules = [self.laterals, self.fusions, self.fused_head]
        else:
            raise SlrbenchError(f"camfuse pathway: found '{name}'; expected one of "
                                f"{', '.join(PATHWAYS)}")
        return [p for m in modules if m is not None for p in m.parameters()]

    def _pooled(self, x: Tensor) -> Tensor:
        return self.dropout(x.mean(dim=(2, 3, 4)))

    def forward(self, rgb: Tensor | None = None,
                heatmap: Tensor | None = None) -> dict[str, Tensor]:
        if rgb is None and heatmap is None:
            raise SlrbenchError("camfuse forward: found neither rgb nor heatmap; expected "
                                "at least one input")
        if rgb is not None:
            _check_input(rgb, "rgb", 3)
        if heatmap is not None:
            _check_input(heatmap, "heatmap", self.config.pose.in_channels)
        if heatmap is None:
            assert rgb is not None
            return {"rgb": self.rgb_head(self._pooled(self.rgb(rgb)))}
        if rgb is None:
            return {"pose": self.pose_head(self._pooled(self.pose(heatmap)))}
        if rgb.shape[0] != heatmap.shape[0]:
            raise SlrbenchError(f"camfuse inputs: found batch {rgb.shape[0]} rgb and "
                                f"{heatmap.shape[0]} heatmap; expected the same")
        xr, xp = self.rgb.stem(rgb), self.pose.stem(heatmap)
        done_r = done_p = 0  # stages already run
        for i, j in self.points:
            for stage in self.rgb.stages[done_r:i + 1]:
                xr = stage(xr)
            for stage in self.pose.stages[done_p:j + 1]:
                xp = stage(xp)
            done_r, done_p = i + 1, j + 1
            key = _key((i, j))
            if key in self.laterals:  # convolutional exchange first, then attention
                xr, xp = self.laterals[key](xr, xp)
            if key in self.fusions:
                xr, xp = self.fusions[key](xr, xp)
        for stage in self.rgb.stages[done_r:]:
            xr = stage(xr)
        for stage in self.pose.stages[done_p:]:
            xp = stage(xp)
        fr, fp = self._pooled(xr), self._pooled(xp)
        out = {"rgb": self.rgb_head(fr), "pose": self.pose_head(fp)}
        if self.fused_head is not None:
            out["fused"] = self.fused_head(torch.cat([fr, fp], dim=1))
        return out
