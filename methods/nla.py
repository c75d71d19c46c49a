"""VKNet, the video-keypoint network of NLA-SLR (docs/methods/nla.md#architecture).

Own implementation from the facts in docs/methods/nla.md (upstream `FangyunWei/SLRT`,
`NLA-SLR/modelling/`): four S3D streams - RGB and keypoint heatmaps, each at a high and a low
frame rate - joined after every stage but the last by

* bidirectional RGB <-> keypoint laterals inside each rate: keypoint -> RGB a transposed
  (1, 3, 3) conv of stride (1, 2, 2) (the heatmaps have half the RGB size), RGB -> keypoint a
  (1, 3, 3) conv of stride (1, 2, 2), both added;
* cross-rate laterals per modality: high -> low a (3, 1, 1) conv of stride (2, 1, 1), low -> high
  the transposed conv, both added.

Both directions of one exchange read the maps from before that exchange; the order per stage is
RGB <-> keypoint in both rates, then RGB high <-> low, then keypoint high <-> low. The laterals
have no BN, activation or bias and are Kaiming-normal initialised. Every stream is pooled
(spatial mean, a temporal average of window 2 and stride 1, temporal mean) and seven linear
heads classify the four vectors and three concatenations of them. With ``language`` each head
also owns an inter-modality mixup unit (gloss mapper + word-fused classifier,
docs/methods/nla-losses.md) whose classifier the training averages into the main one (EMA).

Presets (docs/methods/nla.md#presets): ``paper`` (full S3D, 64/32 frames, 224 / 112 px) and
``tiny`` (S3D-lite of widths w, 2w, 4w, 8w, 12/6 frames, 64 / 32 px). What the facts leave
open is listed in docs/methods/nla.md#reconstruction-decisions: the S3D-lite backbone (a
separable 3x3 stem of stride 2 in space and time, then residual ``S3DBlock`` stages of spatial
stride 2), the pooling window kept at 2 in ``tiny``, transposed laterals that match any size the
forward conv could have come from, the heads' default torch init.

Maps are (N, C, T, H, W).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional

from slrbench.errors import SlrbenchError
from slrbench.methods.blocks.conv3d import (
    S3D_STAGE_CHANNELS,
    StagedBackbone,
    s3d_backbone,
    s3d_lite_backbone,
)
from slrbench.methods.nla_losses import InterModalityMixup

Triple = tuple[int, int, int]
BACKBONES = ("s3d", "s3d_lite")
STREAMS = ("rgb_h", "rgb_l", "kp_h", "kp_l")
HEADS = ("rgb_h", "rgb_l", "kp_h", "kp_l", "fuse", "fuse_h", "fuse_l")
# The streams each head classifies, concatenated in this order (upstream's `four_type3`).
HEAD_STREAMS: dict[str, tuple[str, ...]] = {
    "rgb_h": ("rgb_h",), "rgb_l": ("rgb_l",), "kp_h": ("kp_h",), "kp_l": ("kp_l",),
    "fuse": ("rgb_h", "rgb_l", "kp_h", "kp_l"),
    "fuse_h": ("rgb_h", "kp_h"),
    "fuse_l": ("rgb_l", "kp_l"),
}


# ------------------------------------------------------------------------------ config
def _ints(value: Any, name: str) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise SlrbenchError(f"vknet config {name}: found {value!r}; expected a list of integers")
    return tuple(int(v) for v in value)


@dataclass(frozen=True)
class VKNetConfig:
    """Architecture of one VKNet (docs/methods/nla.md#architecture, #presets).

    ``widths`` are the output channels of the backbone stages c1..cN (fixed to S3D's
    64/192/480/832/1024 for ``s3d``); the laterals sit after c1..c(N-1). ``high_frames`` /
    ``low_frames`` and ``rgb_size`` / ``heatmap_size`` are the clip lengths and input sizes the
    net is built for: the cross-rate laterals need a 2:1 frame ratio, the RGB <-> keypoint
    laterals a 2:1 size ratio. ``heads``: a subset of the seven heads, in any order.
    ``language``: every head also owns a gloss mapper Linear(gloss_dim -> feature) and a
    word-fused classifier (inter-modality mixup).
    """

    num_classes: int
    backbone: str = "s3d"
    widths: tuple[int, ...] = S3D_STAGE_CHANNELS
    in_channels: int = 63
    high_frames: int = 64
    low_frames: int = 32
    rgb_size: int = 224
    heatmap_size: int = 112
    laterals: bool = True
    cross_rate: bool = True
    heads: tuple[str, ...] = HEADS
    language: bool = True
    gloss_dim: int = 300
    pool_window: int = 2
    # s3d_lite only: the stem's spatial kernel (S3D's 7 at 224 px scales to 2-3 at 64 px; 3
    # also keeps the 63-channel heatmap stem, the costliest layer of `tiny`, cheap).
    stem_kernel: int = 3

    def __post_init__(self) -> None:
        object.__setattr__(self, "widths", _ints(self.widths, "widths"))
        if isinstance(self.heads, str):
            raise SlrbenchError(f"vknet config heads: found {self.heads!r}; expected a list of "
                                f"head names from {', '.join(HEADS)}")
        object.__setattr__(self, "heads", tuple(str(h) for h in self.heads))
        if self.backbone not in BACKBONES:
            raise SlrbenchError(f"vknet config backbone: found '{self.backbone}'; expected one "
                                f"of {', '.join(BACKBONES)}")
        if self.backbone == "s3d" and self.widths != S3D_STAGE_CHANNELS:
            raise SlrbenchError(f"vknet config widths: found {list(self.widths)} for backbone "
                                f"s3d; expected {list(S3D_STAGE_CHANNELS)}")
        if len(self.widths) < 2 or min(self.widths) < 1:
            raise SlrbenchError(f"vknet config widths: found {list(self.widths)}; expected at "
                                "least 2 widths >= 1")
        sizes = {"num_classes": self.num_classes, "in_channels": self.in_channels,
                 "high_frames": self.high_frames, "low_frames": self.low_frames,
                 "rgb_size": self.rgb_size, "heatmap_size": self.heatmap_size,
                 "gloss_dim": self.gloss_dim, "pool_window": self.pool_window,
                 "stem_kernel": self.stem_kernel}
        for name, value in sizes.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise SlrbenchError(f"vknet config {name}: found {value!r}; expected an "
                                    "integer >= 1")
        if self.cross_rate and self.high_frames != 2 * self.low_frames:
            raise SlrbenchError(
                f"vknet config frames: found high {self.high_frames}, low {self.low_frames} "
                "with cross_rate; expected high = 2 x low (stride-2 temporal laterals)")
        if self.laterals and self.rgb_size != 2 * self.heatmap_size:
            raise SlrbenchError(
                f"vknet config sizes: found rgb {self.rgb_size}, heatmap {self.heatmap_size} "
                "with laterals; expected rgb = 2 x heatmap (stride-2 spatial laterals)")
        unknown = [h for h in self.heads if h not in HEADS]
        if not self.heads or unknown or len(set(self.heads)) != len(self.heads):
            raise SlrbenchError(f"vknet config heads: found {list(self.heads)}; expected "
                                f"distinct names from {', '.join(HEADS)}")

    @property
    def lateral_stages(self) -> tuple[int, ...]:
        """0-based stages after which the streams exchange (all but the last)."""
        return tuple(range(len(self.widths) - 1))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["widths"], d["heads"] = list(self.widths), list(self.heads)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VKNetConfig:
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise SlrbenchError(f"vknet config: unknown field(s) {', '.join(unknown)}; "
                                f"expected some of {', '.join(known)}")
        if "num_classes" not in data:
            raise SlrbenchError("vknet config num_classes: missing; expected an integer >= 1")
        return cls(**dict(data))

    @classmethod
    def tiny(cls, num_classes: int, in_channels: int = 63, width: int = 8,
             gloss_dim: int = 50) -> VKNetConfig:
        """docs/methods/nla.md#presets: S3D-lite of widths w, 2w, 4w, 8w (a 3x3 stem + 3
        separable residual stages), laterals after the first 3 stages, 12 / 6 frames at 64 px
        RGB and 32 px heatmaps, gloss vectors of `gloss_dim` (GloVe-6B-50d)."""
        if width < 1:
            raise SlrbenchError(f"vknet tiny width: found {width}; expected an integer >= 1")
        w = width
        return cls(num_classes, backbone="s3d_lite", widths=(w, 2 * w, 4 * w, 8 * w),
                   in_channels=in_channels, high_frames=12, low_frames=6, rgb_size=64,
                   heatmap_size=32, gloss_dim=gloss_dim, stem_kernel=3)

    @classmethod
    def paper(cls, num_classes: int, in_channels: int = 63, gloss_dim: int = 300) -> VKNetConfig:
        """docs/methods/nla.md#presets: full S3D x 4, 64 / 32 frames, 224 px RGB and 112 px
        heatmaps, laterals after c1..c4, 300-d fastText gloss vectors."""
        return cls(num_classes, backbone="s3d", widths=S3D_STAGE_CHANNELS,
                   in_channels=in_channels, high_frames=64, low_frames=32, rgb_size=224,
                   heatmap_size=112, gloss_dim=gloss_dim)


# ------------------------------------------------------------------------------ laterals
class Lateral(nn.Module):
    """Bidirectional lateral between a larger map ``big`` and a smaller map ``small`` (half
    its size along the strided axes): ``down`` = conv(kernel, stride) big -> small, ``up`` =
    the transposed conv small -> big; ``forward(big, small)`` returns
    (big + up(small), small + down(big)), both from the maps as given.

    RGB <-> keypoint: kernel (1, 3, 3), stride (1, 2, 2), big = RGB. High <-> low rate: kernel
    (3, 1, 1), stride (2, 1, 1), big = high. No BN, activation or bias; Kaiming-normal init.
    """

    def __init__(self, channels: int, kernel: Triple, stride: Triple) -> None:
        super().__init__()
        padding = (kernel[0] // 2, kernel[1] // 2, kernel[2] // 2)
        self.kernel, self.stride, self.padding = kernel, stride, padding
        # output padding stride - 1: doubles an even size exactly (56 -> 112, 16 -> 32).
        output_padding = (stride[0] - 1, stride[1] - 1, stride[2] - 1)
        self.down = nn.Conv3d(channels, channels, kernel, stride, padding, bias=False)
        self.up = nn.ConvTranspose3d(channels, channels, kernel, stride, padding,
                                     output_padding, bias=False)
        for conv in (self.down, self.up):
            nn.init.kaiming_normal_(conv.weight)

    def _upsampled(self, small: Tensor, big: Tensor) -> Tensor:
        # The target size picks the output padding, so an odd `big` (e.g. 5 -> 3 -> 5) matches
        # too; sizes a stride-s conv cannot have produced `small` from are refused.
        target = list(big.shape[2:])
        lowest = [(n - 1) * s - 2 * p + k for n, s, p, k in
                  zip(small.shape[2:], self.stride, self.padding, self.kernel)]
        if small.shape[:2] != big.shape[:2] or not all(
                lo <= t < lo + s for lo, t, s in zip(lowest, target, self.stride)):
            raise SlrbenchError(
                f"vknet lateral: found maps {list(big.shape)} and {list(small.shape)}; expected "
                f"the second to be the first strided by {list(self.stride)}")
        return self.up(small, output_size=target)

    def forward(self, big: Tensor, small: Tensor) -> tuple[Tensor, Tensor]:
        return big + self._upsampled(small, big), small + self.down(big)


# ------------------------------------------------------------------------------ network
class VKNet(nn.Module):
    """Four-stream S3D network with RGB <-> keypoint and cross-rate laterals and seven
    linear heads (module docstring). ``forward(rgb, heatmap, rgb_low, heatmap_low)`` takes the
    high-rate clips and the low-rate sub-windows the caller cut from them and returns
    ``{"logits": {head: (N, K)}, "features": {head: (N, feature dim)}}``."""

    def __init__(self, config: VKNetConfig) -> None:
        super().__init__()
        self.config = config
        self.language = config.language
        self.streams = nn.ModuleDict({
            name: self._build_backbone(3 if name.startswith("rgb") else config.in_channels)
            for name in STREAMS
        })
        widths = config.widths
        self.intra = nn.ModuleDict()  # "high_c1": RGB <-> keypoint of the high rate after c1
        self.cross = nn.ModuleDict()  # "rgb_c1": RGB high <-> low after c1
        for i in config.lateral_stages:
            if config.laterals:
                for rate in ("high", "low"):
                    self.intra[f"{rate}_c{i + 1}"] = Lateral(widths[i], (1, 3, 3), (1, 2, 2))
            if config.cross_rate:
                for modality in ("rgb", "kp"):
                    self.cross[f"{modality}_c{i + 1}"] = Lateral(widths[i], (3, 1, 1),
                                                                 (2, 1, 1))
        self.feature_dims = {h: widths[-1] * len(HEAD_STREAMS[h]) for h in config.heads}
        self.classifiers = nn.ModuleDict({
            h: nn.Linear(d, config.num_classes) for h, d in self.feature_dims.items()})
        self.imm = nn.ModuleDict()
        if config.language:
            # A zero gloss table until set_gloss_vectors (the table is a non-persistent buffer).
            table = torch.zeros(config.num_classes, config.gloss_dim)
            for h, d in self.feature_dims.items():
                self.imm[h] = InterModalityMixup(table, d)
        # Channels-last 3-D maps: oneDNN's (and cuDNN's) faster 3-D convolutions; 1.5x per
        # training step of `tiny` on 2 CPU cores (docs/PERFORMANCE.md). Same maths.
        self.to(memory_format=torch.channels_last_3d)  # type: ignore[call-overload]  # stubs lack it

    def _build_backbone(self, in_channels: int) -> StagedBackbone:
        if self.config.backbone == "s3d":
            return s3d_backbone(in_channels)
        return s3d_lite_backbone(in_channels, self.config.widths, self.config.stem_kernel)

    # -- accessors ---------------------------------------------------------------------------
    def backbone(self, stream: str) -> StagedBackbone:
        if stream not in self.streams:
            raise SlrbenchError(f"vknet stream: found '{stream}'; expected one of "
                                f"{', '.join(STREAMS)}")
        module = self.streams[stream]
        assert isinstance(module, StagedBackbone)
        return module

    def _head(self, head: str, table: nn.ModuleDict, what: str) -> nn.Module:
        if head not in table:
            raise SlrbenchError(f"vknet {what}: found head '{head}'; expected one of "
                                f"{', '.join(table.keys()) or '(none: language is off)'}")
        return table[head]

    def main_classifier(self, head: str) -> nn.Linear:
        """The head's main (inference) classifier, the EMA target."""
        module = self._head(head, self.classifiers, "main classifier")
        assert isinstance(module, nn.Linear)
        return module

    def imm_unit(self, head: str) -> InterModalityMixup:
        module = self._head(head, self.imm, "inter-modality mixup")
        assert isinstance(module, InterModalityMixup)
        return module

    def word_classifier(self, head: str) -> nn.Linear:
        """The head's word-fused classifier (inter-modality mixup), the EMA source."""
        return self.imm_unit(head).classifier

    @torch.no_grad()
    def set_gloss_vectors(self, vectors: Tensor) -> None:
        """Copy a (K, gloss_dim) gloss table into every head's mixup unit (nothing to do when
        the language part is off)."""
        expected = (self.config.num_classes, self.config.gloss_dim)
        if tuple(vectors.shape) != expected:
            raise SlrbenchError(f"vknet gloss vectors: found shape {list(vectors.shape)}; "
                                f"expected {list(expected)} (classes, gloss_dim)")
        for h in self.imm:
            glosses = self.imm_unit(h).glosses
            assert isinstance(glosses, Tensor)
            glosses.copy_(vectors.to(glosses))

    def parameter_counts(self) -> dict[str, int]:
        """Trainable parameters per part (docs/methods/nla.md#presets)."""
        def count(module: nn.Module) -> int:
            return sum(p.numel() for p in module.parameters() if p.requires_grad)

        counts = {f"backbone_{s}": count(self.backbone(s)) for s in STREAMS}
        counts["laterals"] = count(self.intra)
        counts["cross_rate"] = count(self.cross)
        counts["classifiers"] = count(self.classifiers)
        counts["word_classifiers"] = sum(count(self.imm_unit(h).classifier) for h in self.imm)
        counts["gloss_mappers"] = sum(count(self.imm_unit(h).mapper) for h in self.imm)
        counts["total"] = count(self)
        return counts

    # -- forward -----------------------------------------------------------------------------
    def _check_inputs(self, x: Mapping[str, Tensor]) -> None:
        batch = x["rgb_h"].shape[0] if x["rgb_h"].dim() == 5 else -1
        for name, t in x.items():
            channels = 3 if name.startswith("rgb") else self.config.in_channels
            if t.dim() != 5 or t.shape[0] != batch or t.shape[1] != channels:
                raise SlrbenchError(
                    f"vknet input {name}: found shape {list(t.shape)}; expected "
                    f"(N, {channels}, T, H, W) with the same N for all four inputs")

    def _pool(self, x: Tensor) -> Tensor:
        """(N, C, T, H, W) -> (N, C): spatial mean, temporal average of `pool_window` (stride
        1, skipped when the clip is shorter), temporal mean."""
        x = x.mean((3, 4))
        window = self.config.pool_window
        if 1 < window <= x.shape[2]:
            x = functional.avg_pool1d(x, window, stride=1)
        return x.mean(2)

    def forward(self, rgb: Tensor, heatmap: Tensor, rgb_low: Tensor,
                heatmap_low: Tensor) -> dict[str, dict[str, Tensor]]:
        x = {"rgb_h": rgb, "rgb_l": rgb_low, "kp_h": heatmap, "kp_l": heatmap_low}
        self._check_inputs(x)
        x = {s: v.contiguous(memory_format=torch.channels_last_3d) for s, v in x.items()}
        stages = {s: self.backbone(s).stages for s in STREAMS}
        lateral_stages = self.config.lateral_stages
        for i in range(len(self.config.widths)):
            x = {s: stages[s][i](x[s]) for s in STREAMS}
            if i not in lateral_stages:
                continue
            c = f"c{i + 1}"
            if self.config.laterals:  # RGB <-> keypoint inside each rate
                x["rgb_h"], x["kp_h"] = self.intra[f"high_{c}"](x["rgb_h"], x["kp_h"])
                x["rgb_l"], x["kp_l"] = self.intra[f"low_{c}"](x["rgb_l"], x["kp_l"])
            if self.config.cross_rate:  # then high <-> low, RGB first
                x["rgb_h"], x["rgb_l"] = self.cross[f"rgb_{c}"](x["rgb_h"], x["rgb_l"])
                x["kp_h"], x["kp_l"] = self.cross[f"kp_{c}"](x["kp_h"], x["kp_l"])
        pooled = {s: self._pool(v) for s, v in x.items()}
        features = {h: torch.cat([pooled[s] for s in HEAD_STREAMS[h]], dim=1)
                    for h in self.config.heads}
        logits = {h: self.classifiers[h](f) for h, f in features.items()}
        return {"logits": logits, "features": features}
