"""Self-learning fusion's networks (docs/methods/slfusion.md#architecture), written from facts
only: an Inception-v1 3-D video classifier (I3D, and I3D-lite at reduced width and depth), an
InceptionTime 1-D classifier for the wrist IMU, a second video network (the generator) that
learns to output the IMU network's feature from video, and the MLPs that classify from
generated features alone and from the video and generated features together.

`SelfLearningFusion` holds all of them. Its video-only heads (`video_only`) take the RGB clip and
nothing else, so the fused prediction cannot read the sensor by construction; `imu` is the one
head that reads it (an upper bound, docs/evaluation.md#marks-in-tables).

Shapes: RGB clips (N, 3, T, H, W), ImageNet-normalised; IMU sequences (N, C, S), channels first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional

from slrbench.config import check_fields
from slrbench.errors import SlrbenchError
from slrbench.methods.blocks.conv3d import S3D_MIXED, conv3d_bn_relu, set_batchnorm

# The Inception-v1 Mixed blocks in I3D order, grouped by the max-pool that precedes each group.
I3D_GROUPS: tuple[tuple[str, ...], ...] = (("3b", "3c"), ("4b", "4c", "4d", "4e", "4f"),
                                           ("5b", "5c"))
# Keras' BatchNormalization defaults (eps 1e-3, decay 0.99 = torch momentum 0.01): the paper
# preset's I3D is a Keras network upstream.
KERAS_BN = (1e-3, 0.01)
VIDEO_HEADS = ("video", "generated-imu", "fused", "late")


# ---------------------------------------------------------------------------------- configs


@dataclass(frozen=True)
class I3DConfig:
    """The video network: I3D with every width divided by `divisor` (1: Inception-v1's) and
    the Mixed blocks `blocks` of each group (all nine at paper), then global average pooling,
    dropout and a linear `embed`-d feature (upstream Dense(128))."""

    divisor: int = 1
    blocks: tuple[tuple[str, ...], ...] = I3D_GROUPS
    stem_kernel: tuple[int, int, int] = (7, 7, 7)
    embed: int = 128
    dropout: float = 0.4
    keras_bn: bool = True

    def __post_init__(self) -> None:
        if self.divisor < 1 or self.embed < 1 or not 0 <= self.dropout < 1:
            raise SlrbenchError(f"model.video: found divisor {self.divisor}, embed {self.embed}, "
                                f"dropout {self.dropout}; expected divisor, embed >= 1 and "
                                "0 <= dropout < 1")
        names = [b for group in self.blocks for b in group]
        unknown = [b for b in names if b not in S3D_MIXED]
        if len(self.blocks) != len(I3D_GROUPS) or unknown or any(not g for g in self.blocks):
            raise SlrbenchError(f"model.video.blocks: found {[list(g) for g in self.blocks]}; "
                                f"expected {len(I3D_GROUPS)} non-empty groups of Mixed blocks "
                                f"from {', '.join(S3D_MIXED)}")


@dataclass(frozen=True)
class InceptionTimeConfig:
    """InceptionTime: `depth` modules of three convolutions (`kernels`, `filters` each) and a
    max-pool branch after a `bottleneck` 1x1 convolution, a residual shortcut after every
    `residual_every` modules; the feature is 4 * filters wide."""

    channels: int = 12
    filters: int = 32
    depth: int = 6
    kernels: tuple[int, int, int] = (40, 20, 10)
    bottleneck: int = 32
    residual_every: int = 3

    def __post_init__(self) -> None:
        if min(self.channels, self.filters, self.depth, self.bottleneck, self.residual_every,
               *self.kernels) < 1:
            raise SlrbenchError(f"model.sensor: found {asdict(self)}; expected positive sizes")

    @property
    def feature(self) -> int:
        return 4 * self.filters


@dataclass(frozen=True)
class SLFusionConfig:
    """The whole method's networks. `mlp`: the hidden widths of the fusion and gen-cls MLPs
    (upstream Dense(1024) -> BN -> LeakyReLU(0.2) -> Dropout -> Dense(512), linear)."""

    num_classes: int
    video: I3DConfig = field(default_factory=I3DConfig)
    sensor: InceptionTimeConfig = field(default_factory=InceptionTimeConfig)
    mlp: tuple[int, int] = (1024, 512)
    mlp_dropout: float = 0.4

    def __post_init__(self) -> None:
        if self.video.embed != self.sensor.feature:
            raise SlrbenchError(f"model.video.embed: found {self.video.embed}; expected the IMU "
                                f"feature width 4 x model.sensor.filters = {self.sensor.feature} "
                                "(the generator outputs the IMU feature)")
        if self.num_classes < 1 or min(self.mlp) < 1:
            raise SlrbenchError(f"model: found num_classes {self.num_classes}, mlp "
                                f"{list(self.mlp)}; expected positive sizes")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["video"]["blocks"] = [list(g) for g in self.video.blocks]
        data["video"]["stem_kernel"] = list(self.video.stem_kernel)
        data["sensor"]["kernels"] = list(self.sensor.kernels)
        data["mlp"] = list(self.mlp)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SLFusionConfig:
        check_fields(cls, data, "model")
        video, sensor = dict(data.get("video", {})), dict(data.get("sensor", {}))
        check_fields(I3DConfig, video, "model.video")
        check_fields(InceptionTimeConfig, sensor, "model.sensor")
        if "blocks" in video:
            video["blocks"] = tuple(tuple(g) for g in video["blocks"])
        if "stem_kernel" in video:
            video["stem_kernel"] = tuple(video["stem_kernel"])
        if "kernels" in sensor:
            sensor["kernels"] = tuple(sensor["kernels"])
        values = {**data, "video": I3DConfig(**video), "sensor": InceptionTimeConfig(**sensor)}
        if "mlp" in values:
            values["mlp"] = tuple(values["mlp"])
        return cls(**values)


# ------------------------------------------------------------------------------ video: I3D


def _scaled(width: int, divisor: int) -> int:
    return max(1, round(width / divisor))


class I3DMixed(nn.Module):
    """I3D's Mixed block: 1x1x1; 1x1x1 -> 3x3x3; 1x1x1 -> 3x3x3; 3x3x3 max-pool (stride 1) ->
    1x1x1; concatenated. Full 3x3x3 convolutions (S3D's `MixedBlock` makes them separable)."""

    def __init__(self, c_in: int, widths: Sequence[int]) -> None:
        super().__init__()
        b0, b1_reduce, b1, b2_reduce, b2, b3 = widths
        self.branch0 = conv3d_bn_relu(c_in, b0, 1)
        self.branch1 = nn.Sequential(conv3d_bn_relu(c_in, b1_reduce, 1),
                                     conv3d_bn_relu(b1_reduce, b1, 3))
        self.branch2 = nn.Sequential(conv3d_bn_relu(c_in, b2_reduce, 1),
                                     conv3d_bn_relu(b2_reduce, b2, 3))
        self.branch3 = nn.Sequential(nn.MaxPool3d(3, 1, 1), conv3d_bn_relu(c_in, b3, 1))
        self.out_channels = b0 + b1 + b2 + b3

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)], 1)


class I3D(nn.Module):
    """Inception-v1 inflated to 3-D, as the upstream Keras network lays it out: stem conv
    stride 2 -> max-pool (1,3,3)/(1,2,2) -> 1x1x1 (64) -> 3x3x3 (192) -> max-pool (1,3,3)/
    (1,2,2) -> Mixed 3b-3c -> max-pool 3x3x3/2 -> Mixed 4b-4f -> max-pool 2x2x2/2 -> Mixed 5b-5c
    -> global average pool -> dropout -> linear `embed` (the feature). "Same" padding
    throughout; every conv is conv + BN + ReLU without bias. `classes`: a linear classifier on
    the feature (None: the no-top network, the generator)."""

    def __init__(self, config: I3DConfig, classes: int | None, in_channels: int = 3) -> None:
        super().__init__()
        d = config.divisor
        c1, c2, c3 = _scaled(64, d), _scaled(64, d), _scaled(192, d)
        layers: list[nn.Module] = [
            conv3d_bn_relu(in_channels, c1, config.stem_kernel, 2),
            nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
            conv3d_bn_relu(c1, c2, 1),
            conv3d_bn_relu(c2, c3, 3),
        ]
        pools = (nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)), nn.MaxPool3d(3, 2, 1),
                 nn.MaxPool3d(2, 2, 0, ceil_mode=True))
        c_in = c3
        for pool, group in zip(pools, config.blocks, strict=True):
            layers.append(pool)
            for name in group:
                block = I3DMixed(c_in, [_scaled(w, d) for w in S3D_MIXED[name]])
                layers.append(block)
                c_in = block.out_channels
        self.features = nn.Sequential(*layers)
        self.channels = c_in
        self.dropout = nn.Dropout(config.dropout)
        self.embed = nn.Linear(c_in, config.embed)
        self.classifier = nn.Linear(config.embed, classes) if classes is not None else None
        if config.keras_bn:
            set_batchnorm(self, *KERAS_BN)

    def feature(self, rgb: Tensor) -> Tensor:
        pooled = self.features(rgb).mean(dim=(2, 3, 4))
        return self.embed(self.dropout(pooled))

    def classify(self, feature: Tensor) -> Tensor:
        if self.classifier is None:
            raise SlrbenchError("I3D: classify() on the no-top network; expected one built "
                                "with classes")
        return self.classifier(feature)

    def forward(self, rgb: Tensor) -> Tensor:
        feature = self.feature(rgb)
        return feature if self.classifier is None else self.classifier(feature)


# ------------------------------------------------------------------- sensor: InceptionTime


def _same_conv1d(c_in: int, c_out: int, kernel: int) -> nn.Sequential:
    """Keras' "same" convolution: (k - 1) // 2 zeros on the left, the rest on the right (torch's
    padding="same" agrees, but copies the input for even kernels and warns)."""
    total = kernel - 1
    return nn.Sequential(nn.ConstantPad1d((total // 2, total - total // 2), 0.0),
                         nn.Conv1d(c_in, c_out, kernel, bias=False))


class InceptionModule(nn.Module):
    """1x1 bottleneck (only when the input is wider than it) -> three parallel convolutions of
    the three kernel sizes, beside max-pool(3, stride 1) -> 1x1; concatenated, BN, ReLU. All
    convolutions linear, without bias, "same" padding (even kernels padded one more on the
    right, as Keras does)."""

    def __init__(self, c_in: int, config: InceptionTimeConfig) -> None:
        super().__init__()
        f = config.filters
        self.bottleneck = (nn.Conv1d(c_in, config.bottleneck, 1, bias=False)
                           if c_in > config.bottleneck else nn.Identity())
        width = config.bottleneck if c_in > config.bottleneck else c_in
        self.convs = nn.ModuleList(_same_conv1d(width, f, k) for k in config.kernels)
        self.pool = nn.Sequential(nn.MaxPool1d(3, 1, 1), nn.Conv1d(c_in, f, 1, bias=False))
        self.bn = nn.BatchNorm1d(4 * f)

    def forward(self, x: Tensor) -> Tensor:
        squeezed = self.bottleneck(x)
        out = torch.cat([conv(squeezed) for conv in self.convs] + [self.pool(x)], 1)
        return functional.relu(self.bn(out))


class InceptionTime(nn.Module):
    """The IMU classifier: Inception modules with a residual shortcut (1x1 conv + BN, add,
    ReLU) after every `residual_every`-th, global average pooling (the feature u_s), linear
    classifier."""

    def __init__(self, config: InceptionTimeConfig, classes: int) -> None:
        super().__init__()
        self.config = config
        self.blocks = nn.ModuleList()
        self.shortcuts = nn.ModuleList()
        c_in = config.channels
        residual_in = c_in
        for d in range(config.depth):
            self.blocks.append(InceptionModule(c_in, config))
            c_in = config.feature
            if (d + 1) % config.residual_every == 0:
                self.shortcuts.append(nn.Sequential(nn.Conv1d(residual_in, c_in, 1, bias=False),
                                                    nn.BatchNorm1d(c_in)))
                residual_in = c_in
        self.classifier = nn.Linear(config.feature, classes)

    def feature(self, sensor: Tensor) -> Tensor:
        x, residual, shortcuts = sensor, sensor, iter(self.shortcuts)
        for d, module in enumerate(self.blocks):
            x = module(x)
            if (d + 1) % self.config.residual_every == 0:
                x = functional.relu(x + next(shortcuts)(residual))
                residual = x
        return x.mean(dim=2)

    def forward(self, sensor: Tensor) -> Tensor:
        return self.classifier(self.feature(sensor))


# ------------------------------------------------------------------------------------ MLPs


class FusionMLP(nn.Module):
    """Upstream's simple MLP: Dense(h1) -> BN -> LeakyReLU(0.2) -> Dropout -> Dense(h2)
    (linear) -> Dense(K)."""

    def __init__(self, c_in: int, hidden: tuple[int, int], classes: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(c_in, hidden[0]), nn.BatchNorm1d(hidden[0]),
                                 nn.LeakyReLU(0.2), nn.Dropout(dropout),
                                 nn.Linear(hidden[0], hidden[1]), nn.Linear(hidden[1], classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


# ---------------------------------------------------------------------------- the method


def mapping_loss(generated: Tensor, target: Tensor, delta: float = 1.0,
                 norm_weight: float = 1.0) -> Tensor:
    """The generator's loss: Huber(target, generated) (mean over every element, Keras' `Huber`
    with its default delta 1) plus `norm_weight` x |‖generated‖ - ‖target‖|, Frobenius norms of
    the whole batch tensors; upstream's weight is 1 (docs/methods/slfusion.md#training-recipe)."""
    if generated.shape != target.shape:
        raise SlrbenchError(f"mapping loss: generated features {list(generated.shape)}; "
                            f"expected the IMU features' shape {list(target.shape)}")
    huber = functional.huber_loss(generated, target, delta=delta)
    difference = (torch.linalg.norm(generated) - torch.linalg.norm(target)).abs()
    return huber + norm_weight * difference


class SelfLearningFusion(nn.Module):
    """Video classifier, IMU classifier, generator, fusion MLP (video + generated features) and
    gen-cls MLP (generated features). Parts are trained stage by stage; `parts` names them."""

    PARTS = ("video", "sensor", "generator", "fusion", "gen_cls")
    generator_started: Tensor

    def __init__(self, config: SLFusionConfig) -> None:
        super().__init__()
        self.config = config
        k, e = config.num_classes, config.video.embed
        self.video = I3D(config.video, k)
        self.sensor = InceptionTime(config.sensor, k)
        self.generator = I3D(config.video, None)
        self.fusion = FusionMLP(2 * e, config.mlp, k, config.mlp_dropout)
        self.gen_cls = FusionMLP(e, config.mlp, k, config.mlp_dropout)
        # Set once the generator has been started from the trained video network (upstream
        # initialises it from the pre-trained video model); saved with the weights, so a
        # resumed generator stage does not start it again.
        self.register_buffer("generator_started", torch.zeros((), dtype=torch.bool))

    def part(self, name: str) -> nn.Module:
        if name not in self.PARTS:
            raise SlrbenchError(f"slfusion part: found '{name}'; expected one of "
                                f"{', '.join(self.PARTS)}")
        module = getattr(self, name)
        assert isinstance(module, nn.Module)
        return module

    def train_only(self, names: Sequence[str]) -> None:
        """Train mode for the parts `names`, eval mode (frozen BN statistics, no dropout) for
        the rest; gradients stay off for the rest by the stage's loss, which reads them under
        no_grad."""
        for name in self.PARTS:
            self.part(name).train(self.training and name in names)

    @torch.no_grad()
    def start_generator(self) -> None:
        """Copy the video network's layers (all but its classifier) into the generator."""
        video = {k: v for k, v in self.video.state_dict().items()
                 if not k.startswith("classifier.")}
        self.generator.load_state_dict(video)
        self.generator_started.fill_(True)

    def imu_logits(self, sensor: Tensor) -> Tensor:
        return self.sensor(sensor)

    def video_only(self, rgb: Tensor) -> dict[str, Tensor]:
        """Every head that needs nothing but the RGB clip (the method's test-time claim):
        `video`, `generated-imu` (gen-cls on the generated IMU feature), `fused` (the MLP on
        both features) and `late` (the log of the summed softmax of video and generated-imu,
        upstream's late fusion)."""
        h_v = self.video.feature(rgb)
        video = self.video.classify(h_v)
        generated = self.generator(rgb)
        gen = self.gen_cls(generated)
        fused = self.fusion(torch.cat([h_v, generated], 1))
        summed = functional.softmax(video.float(), 1) + functional.softmax(gen.float(), 1)
        late = torch.log(summed.clamp_min(1e-30))  # its softmax is the mean of the two
        return {"video": video, "generated-imu": gen, "fused": fused, "late": late}
