"""The contract every registered method keeps (in the spirit of scikit-learn's estimator
checks): consistent facts, reproducible configurations the runner accepts, models that build
for every preset and produce finite logits of the right shape for every stream."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from slrbench.datasets.base import Dataset
from slrbench.datasets.registry import load_dataset
from slrbench.errors import SlrbenchError
from slrbench.fusion.engine import SPACES
from slrbench.fusion.strategies import STRATEGIES
from slrbench.methods.base import MethodAdapter, SolverAdapter
from slrbench.methods.registry import METHOD_NAMES, get_method
from slrbench.metrics import METRIC_LABELS
from slrbench.store.provenance import canonical_json, config_sha256
from slrbench.training import TrainConfig

SOURCE_MARKERS = ("[R]", "[A]", "[3P]", "[M]", "[V]")
FLAG_CHARACTERS = set("†‡*◊?")


@pytest.fixture(scope="module")
def tiny() -> Dataset:
    return load_dataset("synthsign-tiny")


@pytest.fixture(scope="module", params=METHOD_NAMES)
def method(request: pytest.FixtureRequest) -> MethodAdapter:
    return get_method(request.param)


def test_spec_is_consistent(method: MethodAdapter) -> None:
    spec = method.spec
    assert spec.name in METHOD_NAMES
    assert spec.default_preset in spec.presets
    assert len(set(spec.streams)) == len(spec.streams)
    assert spec.upstream and spec.paper and spec.summary and spec.divergences
    recipe = spec.fusion
    if len(spec.streams) == 1:
        assert recipe is None, "a one-stream method has nothing to fuse"
        return
    assert recipe is not None, "every multi-stream method states its default fusion recipe"
    assert recipe.strategy in STRATEGIES and recipe.score_space in SPACES
    groups = recipe.groups or {}
    assert all(set(members) <= set(spec.streams) for members in groups.values())
    for weights in recipe.weights.values():
        assert set(weights) <= set(spec.streams) | set(groups), sorted(weights)
        assert all(w >= 0 for w in weights.values())


def test_published_numbers_carry_source_and_tuning_split(method: MethodAdapter) -> None:
    for result in method.spec.published:
        assert result.metric in METRIC_LABELS, result
        assert result.source.startswith(SOURCE_MARKERS), result.source
        assert result.tuned_on, f"{result}: say which split chose checkpoints/weights upstream"
        assert set(result.flags) <= FLAG_CHARACTERS, result.flags
        assert 0 < result.value <= 100


def test_configs_are_reproducible_and_accepted_by_the_runner(method: MethodAdapter,
                                                              tiny: Dataset) -> None:
    solver = isinstance(method, SolverAdapter)
    for preset, stream in itertools.product(method.spec.presets,
                                            method.spec.training_units()):
        config = method.resolve_config(preset, tiny.spec, stream, {})
        again = method.resolve_config(preset, tiny.spec, stream, {})
        assert canonical_json(config) == canonical_json(again)  # JSON-ready and deterministic
        assert config_sha256(config) == config_sha256(again)
        if solver:
            assert "fit" in config and "train" not in config
        else:
            TrainConfig.from_dict(config["train"])
        assert isinstance(config["decisions"], list)
        assert config["stream"] == stream and config["preset"] == preset
    # The same configuration with a changed field is a different run; unknown fields fail.
    section, field, value = ("fit", "max_iter", 7) if solver else ("train", "epochs", 3)
    default, first = method.spec.default_preset, method.spec.training_units()[0]
    changed = method.resolve_config(default, tiny.spec, first, {f"{section}.{field}": value})
    assert changed[section][field] == value
    assert config_sha256(changed) != config_sha256(method.resolve_config(default, tiny.spec,
                                                                         first, {}))
    with pytest.raises(SlrbenchError, match="unknown field"):
        method.resolve_config(default, tiny.spec, first, {f"{section}.no_such_field": 1})
    if not solver:
        with pytest.raises(SlrbenchError, match="train config: unknown field 'bogus'"):
            TrainConfig.from_dict({**changed["train"], "bogus": 1})


def test_every_stream_builds_and_predicts(method: MethodAdapter, tiny: Dataset) -> None:
    torch.manual_seed(0)
    preset = method.spec.default_preset
    k = tiny.spec.num_classes
    for stream in method.spec.training_units():
        config = method.resolve_config(preset, tiny.spec, stream, {})
        if isinstance(method, SolverAdapter):
            one_c = method.resolve_config(preset, tiny.spec, stream, {"fit.c_grid": [1.0]})
            fit = method.fit(tiny, one_c, seed=0)  # one C: the grid search is test_linear's
            for split in ("val", "test"):
                scores = fit.scores[split]
                assert scores.shape == (len(tiny.spec.splits[split]), k), split
                assert np.isfinite(scores).all(), split
            assert fit.params > 0 and fit.state
            with pytest.raises(SlrbenchError, match="fitted by a solver"):
                method.build_model(config, k)
            continue
        data = method.stream_data(tiny, config, seed=0)
        model = method.build_model(config, k)
        targets = torch.as_tensor(tiny.labels("train")[:2])
        heads = method.heads(config)
        assert set(heads) <= set(method.spec.streams)
        for stage in method.stages(config):  # every stage's loss on its own modalities
            if stage.modalities:
                data.train.set_modalities(stage.modalities)  # type: ignore[attr-defined]
            batch = default_collate([data.train[i][0] for i in range(2)])
            model.train()
            method.on_epoch_start(model, 0, config)
            loss, logits = method.training_loss(model, batch, targets, 0, config, stage)
            assert logits.shape == (2, k) and torch.isfinite(loss), (stream, stage.name)
        model.eval()
        staged: set[str] = set()
        for stage in [*method.stages(config), None]:  # the stages' own records, then the rest
            modalities = (method.prediction_modalities(config) if stage is None
                          else stage.modalities)
            if stage is not None and not stage.stores:
                continue
            if modalities:
                data.test.set_modalities(modalities)  # type: ignore[attr-defined]
            batch = default_collate([data.test[i][0] for i in range(2)])
            with torch.no_grad():
                predicted = method.predict_heads(model, batch, config, stage)
            names = stage.stores if stage is not None else {
                h: h for h in heads if h not in staged}
            assert set(predicted) == set(names), (stream, stage)
            staged |= set(names.values())
            assert all(p.shape == (2, k) and torch.isfinite(p).all() for p in predicted.values())
        assert staged == set(heads), stream
        assert len(data.val) == len(tiny.spec.splits["val"])
        assert len(data.test) == len(tiny.spec.splits["test"])


def test_preset_rows_cover_every_preset(method: MethodAdapter) -> None:
    rows = method.describe_presets()
    # One row per preset, or per preset and part (LGF: body and hand graphs).
    assert {row["preset"] for row in rows} == set(method.spec.presets)
    assert all(any(column.startswith("params") for column in row) for row in rows)
