"""The method contract: a `MethodSpec` (facts shown by `slrbench methods`) and a
`MethodAdapter` (how the shared runner trains one stream of the method).

The runner owns everything that is the same for every method (seeding, the training loop,
selection on val, prediction, records); an adapter only says what is specific: its config,
its model, its data pipeline and its per-epoch hooks. A `SolverAdapter` (the linear baseline)
has no epoch loop: it fits on fixed features, chooses its hyper-parameters on val and hands
back val and test scores; the runner stores them like any other method's.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
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

    @property
    def fidelity(self) -> str:
        if self.own_design:
            return "slrbench baseline (no upstream)"
        return "reconstruction ◊" if self.reconstruction else "faithful re-implementation"


@dataclass
class StreamData:
    """What an adapter hands to the runner for one stream: a torch dataset per split."""

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
