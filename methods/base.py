"""The method contract: a `MethodSpec` (facts shown by `slrbench methods`) and a
`MethodAdapter` (how the shared runner trains one training unit of the method).

The runner owns everything that is the same for every method (seeding, the training loop,
selection on val, prediction, records); an adapter only says what is specific: its config,
its model, its data pipeline and its per-epoch hooks. A `SolverAdapter` (the linear baseline)
has no epoch loop: it fits on fixed features, chooses its hyper-parameters on val and hands
back val and test scores; the runner stores them like any other method's.

Multi-head methods (docs/architecture.md#multi-head-methods): one *training unit* may give
several streams (named prediction heads, one record each: CAMFuse's `rgb`, `pose` and `fused`),
train in several resumable `Stage` s (single-pathway pre-training, then joint fine-tuning), with
a loss of its own per stage (several heads, auxiliary terms), and say which input modalities
each stage and the final prediction may read. The defaults are the single-head, single-stage,
cross-entropy contract of the skeleton methods, computed exactly as before.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional
from torch.utils.data import Dataset as TorchDataset

from slrbench.datasets.base import Dataset, DatasetSpec
from slrbench.errors import SlrbenchError


@dataclass(frozen=True)
class PublishedResult:
    """A number a paper or repository claims, with its source marker and integrity marks
    (docs/evaluation.md#marks-in-tables)."""

    dataset: str
    setting: str
    metric: str  # "pi@1", "pi@5", "pc@1", ...
    value: float  # percent, as published
    source: str  # "[R] jackyjsy/SAM-SLR-v2 README image", ...
    tuned_on: str  # the split that chose checkpoints / fusion weights upstream, as far as known
    flags: str = ""  # "†", "‡", "*", ...


@dataclass(frozen=True)
class FusionRecipe:
    """A method's default way of combining its streams."""

    strategy: str  # "fixed", "bayes", "hier", ...
    score_space: str  # "logits" or "probs"
    weights: dict[str, dict[str, float]]  # dataset (or "default") -> stream -> weight
    source: str
    test_tuned: bool = False  # the published weights were chosen on the reported split
    # The val-fitted strategy that stands in for a test-tuned published search (DSTA-SLR's
    # grids): run beside the published weights so every method has a clean fused number.
    search: str | None = None
    # Two-level recipes ("hier"): group name -> member streams, fused within, then across.
    groups: dict[str, tuple[str, ...]] | None = None
    # The streams fused by default (None: every stream); others are reported beside them.
    streams: tuple[str, ...] | None = None

    def weights_for(self, dataset: str) -> dict[str, float]:
        return self.weights.get(dataset, self.weights["default"])


@dataclass(frozen=True)
class MethodSpec:
    name: str
    title: str
    paper: str
    upstream: str  # repository @ commit the facts come from
    modalities: tuple[str, ...]
    streams: tuple[str, ...]
    presets: tuple[str, ...]
    default_preset: str
    adapter_version: str
    reconstruction: bool = False
    summary: str = ""
    divergences: tuple[str, ...] = ()  # every deliberate difference from upstream
    published: tuple[PublishedResult, ...] = ()
    fusion: FusionRecipe | None = None
    own_design: bool = False  # slrbench's own method (a baseline): no upstream to follow
    # Training units that give several streams (heads of one network trained together):
    # unit -> its streams. A stream not listed is its own unit.
    units: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Streams that read at test time an input the method's claim does without (self-learning
    # fusion's real-IMU classifier): upper bounds, marked ↑ wherever they are shown.
    upper_bound_streams: tuple[str, ...] = ()
    # Reads gloss word vectors from its config's `language.vectors` (`run --word-vectors`).
    gloss_vectors: bool = False
    # Seconds of one tiny epoch relative to a tiny skeleton stream's, roughly: parallel runs
    # start the longest trainings first (a video network's epoch costs several).
    epoch_cost: float = 1.0

    def unit_of(self, stream: str) -> str:
        """The training unit that gives `stream`."""
        return next((unit for unit, heads in self.units.items() if stream in heads), stream)

    def heads_of(self, unit: str) -> tuple[str, ...]:
        """The streams (records) one training of `unit` gives."""
        return self.units.get(unit, (unit,))

    def training_units(self, streams: tuple[str, ...] | None = None) -> tuple[str, ...]:
        """The units to train for `streams` (all streams when None), in stream order."""
        return tuple(dict.fromkeys(self.unit_of(s) for s in (streams or self.streams)))

    @property
    def fidelity(self) -> str:
        if self.own_design:
            return "slrbench baseline (no upstream)"
        return "reconstruction ◊" if self.reconstruction else "faithful re-implementation"


@dataclass(frozen=True)
class Stage:
    """One step of a training recipe, trained, selected on val and resumed on its own.

    `modalities`: the inputs its batches may carry (the datasets' `set_modalities`; empty: the
    pipeline's default, for single-modality methods). `select_on`: the head whose val P-I@1
    chooses the stage's checkpoint (None: the unit's only head). `stores`: heads of this
    stage's selected model stored as streams of their own, head -> stream (CAMFuse's
    single-pathway models: `rgb` -> `rgb_only`). The next stage starts from the weights this
    one selected."""

    name: str
    train: dict[str, Any]  # `slrbench.training.TrainConfig` fields
    modalities: tuple[str, ...] = ()
    select_on: str | None = None
    stores: dict[str, str] = field(default_factory=dict)


# The stage name of a single-stage recipe: its work files stay at the top of the work folder.
SINGLE_STAGE = "train"


@dataclass
class StreamData:
    """What an adapter hands to the runner for one training unit: a torch dataset per split.
    Datasets of multi-modal methods also have `set_modalities(names)`; what they yield for a
    sample is then a dict with exactly those keys."""

    train: TorchDataset
    val: TorchDataset
    test: TorchDataset
    extra: dict[str, Any] = field(default_factory=dict)


# Config keys that name a run but do not change what is trained.
LABEL_KEYS = frozenset({"method", "preset", "stream", "stream_order", "decisions"})


class MethodAdapter(ABC):
    """One method family. Subclasses are registered in `slrbench.methods.registry`."""

    spec: MethodSpec
    # Adapters that build the same network class share a family: two streams of one family
    # with equal data, model and training sections are the same training (LGF-SLR's body
    # streams are SL-GCN's). Empty: the method's own name.
    model_family: str = ""
    label_sections: tuple[str, ...] = ()  # method-specific config sections that only label

    def training_identity(self, config: dict[str, Any]) -> dict[str, Any]:
        """What determines the trained model: the config without its labels, plus the model
        family. The runner hashes it with the dataset and seed to train each identity once."""
        labels = LABEL_KEYS | set(self.label_sections)
        return {"model_family": self.model_family or self.spec.name,
                **{key: value for key, value in config.items() if key not in labels}}

    def check_preset(self, preset: str) -> None:
        if preset not in self.spec.presets:
            raise SlrbenchError(
                f"--preset: unknown preset '{preset}' for method '{self.spec.name}'; "
                f"expected one of {', '.join(self.spec.presets)}"
            )

    def check_streams(self, streams: list[str] | None) -> tuple[str, ...]:
        if not streams:
            return self.spec.streams
        unknown = [s for s in streams if s not in self.spec.streams]
        if unknown:
            raise SlrbenchError(
                f"--streams: unknown stream '{unknown[0]}' for method '{self.spec.name}'; "
                f"expected one of {', '.join(self.spec.streams)}"
            )
        return tuple(dict.fromkeys(streams))

    @abstractmethod
    def resolve_config(
        self, preset: str, spec: DatasetSpec, stream: str, overrides: dict[str, Any]
    ) -> dict[str, Any]:
        """The full configuration of one stream's run (stored and hashed in every record).

        Must contain a "train" section accepted by `slrbench.training.TrainConfig.from_dict`
        and a "decisions" list of named choices (`slgcn.flip_width=dataset`, ...).
        """

    @abstractmethod
    def build_model(self, config: dict[str, Any], num_classes: int) -> nn.Module: ...

    @abstractmethod
    def stream_data(self, dataset: Dataset, config: dict[str, Any], seed: int) -> StreamData: ...

    def on_epoch_start(  # noqa: B027 - optional hook: a no-op unless a method overrides it
        self, model: nn.Module, epoch: int, config: dict[str, Any]
    ) -> None:
        """Per-epoch schedule hooks (drop rates, frozen parameters)."""

    def forward(
        self, model: nn.Module, inputs: torch.Tensor, epoch: int, config: dict[str, Any]
    ) -> torch.Tensor:
        """Logits for a batch; `epoch` is -1 at prediction time."""
        return model(inputs)

    # -- multi-head, multi-stage contract (defaults: one head, one stage, cross-entropy) ---
    def heads(self, config: dict[str, Any]) -> tuple[str, ...]:
        """The streams (records) this unit's training gives, in order."""
        return self.spec.heads_of(config["stream"])

    def stages(self, config: dict[str, Any]) -> tuple[Stage, ...]:
        return (Stage(SINGLE_STAGE, config["train"]),)

    def prediction_modalities(self, config: dict[str, Any]) -> tuple[str, ...]:
        """The inputs the val and test predictions may read (empty: the pipeline's default)."""
        return ()

    def training_loss(self, model: nn.Module, inputs: Any, targets: Tensor, epoch: int,
                      config: dict[str, Any], stage: Stage) -> tuple[Tensor, Tensor]:
        """(loss, logits the training accuracy is counted on) for one batch of `stage`."""
        logits = self.forward(model, inputs, epoch, config)
        smoothing = float(stage.train.get("label_smoothing", 0.0))
        return functional.cross_entropy(logits.float(), targets, label_smoothing=smoothing), logits

    def after_step(  # noqa: B027 - optional hook: a no-op unless a method overrides it
        self, model: nn.Module, epoch: int, config: dict[str, Any], stage: Stage
    ) -> None:
        """Called after every optimiser step of `stage` (weight averaging, EMA couplings)."""

    def predict_heads(self, model: nn.Module, inputs: Any, config: dict[str, Any],
                      stage: Stage | None = None) -> dict[str, Tensor]:
        """Head -> logits for a batch at prediction time; `stage` set: its val selection
        (only what the stage trains), None: the final val and test predictions."""
        return {self.heads(config)[0]: self.forward(model, inputs, -1, config)}

    def head_parameters(self, model: nn.Module, stream: str, config: dict[str, Any]) -> int:
        """Trainable parameters behind one stream (default: the whole model)."""
        return sum(p.numel() for p in model.parameters() if p.requires_grad)

    def example_inputs(self, config: dict[str, Any], batch: int, train: bool,
                       device: torch.device) -> Any:
        """Random inputs of a training (`train`) or prediction batch, shaped as the method's
        pipeline yields them (`slrbench profile` times the model on them)."""
        raise SlrbenchError(f"method '{self.spec.name}': no example inputs; expected "
                            "MethodAdapter.example_inputs for `slrbench profile`")

    def describe_inputs(self, config: dict[str, Any]) -> dict[str, Any]:
        """The input shapes `example_inputs` makes, for the profile's record."""
        return {}

    def describe_presets(self) -> list[dict[str, Any]]:
        """Rows for `slrbench methods NAME`: preset, parameter counts, notes."""
        return []


@dataclass
class SolverFit:
    """What a `SolverAdapter` hands to the runner for one stream."""

    scores: dict[str, np.ndarray]  # "val", "test" -> (N, K) logits, in the registry's order
    state: dict[str, np.ndarray]  # the fitted parameters: the record's checkpoint (.npz)
    selection: dict[str, Any]  # what val chose, e.g. {"C": 0.1, "val_pi@1": 0.61}
    params: int
    fit_time_s: float
    predict_s: dict[str, float]  # "val", "test" -> seconds from pose arrays to logits


class SolverAdapter(MethodAdapter):
    """A method fitted by a solver on fixed features, not by `slrbench.training.Trainer`. Its
    config has a "fit" section instead of "train"; the runner calls `fit` once per stream."""

    @abstractmethod
    def fit(self, dataset: Dataset, config: dict[str, Any], seed: int) -> SolverFit: ...

    def _no_torch_model(self) -> SlrbenchError:
        return SlrbenchError(f"method '{self.spec.name}' is fitted by a solver (no torch model, "
                             "no epoch loop); call fit()")

    def build_model(self, config: dict[str, Any], num_classes: int) -> nn.Module:
        raise self._no_torch_model()

    def stream_data(self, dataset: Dataset, config: dict[str, Any], seed: int) -> StreamData:
        raise self._no_torch_model()
