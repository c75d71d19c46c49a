"""NLA-SLR as a method: its unit, streams and stage, the language switches, the loss against
hand-computed cross-entropies, the EMA step, the in-network ensembles, and that the main job
leaves it out (docs/methods/nla.md)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch.nn import functional
from torch.utils.data import default_collate

from slrbench.datasets.base import Dataset
from slrbench.datasets.registry import load_dataset
from slrbench.errors import SlrbenchError
from slrbench.methods.nla import VKNet
from slrbench.methods.nla_adapter import FUSE_HEADS, HEADS, STREAMS, UNIT, NLAAdapter
from slrbench.methods.registry import MAIN_JOB_METHODS, METHOD_NAMES


@pytest.fixture(scope="module")
def tiny() -> Dataset:
    return load_dataset("synthsign-tiny")


@pytest.fixture(scope="module")
def setup(tiny: Dataset) -> tuple[NLAAdapter, dict[str, Any], Any, VKNet]:
    adapter = NLAAdapter()
    config = adapter.resolve_config("tiny", tiny.spec, UNIT, {})
    data = adapter.stream_data(tiny, config, seed=0)
    torch.manual_seed(0)
    model = adapter.build_model(config, tiny.spec.num_classes)
    assert isinstance(model, VKNet)
    return adapter, config, data, model


def test_unit_streams_stage_and_language_switches(tiny: Dataset) -> None:
    adapter = NLAAdapter()
    assert adapter.spec.training_units(("fuse",)) == (UNIT,)
    config = adapter.resolve_config("tiny", tiny.spec, UNIT, {})
    assert adapter.heads(config) == STREAMS == adapter.spec.streams
    (stage,) = adapter.stages(config)
    assert (stage.modalities, stage.select_on) == (("rgb", "heatmap"), "ensemble_last")
    language = config["language"]
    assert (language["label_smoothing"], language["epsilon"], language["tau"]) == (
        "language_aware", 0.2, 0.5)
    assert language["missing_glosses"] == []  # every SynthSign gloss has a vector
    with pytest.raises(SlrbenchError, match="nla: training unit 'fuse'; expected 'vknet'"):
        adapter.resolve_config("tiny", tiny.spec, "fuse", {})
    assert "nla" in METHOD_NAMES and "nla" not in MAIN_JOB_METHODS


def _batch(data: Any, split: str, n: int = 2) -> Any:
    return default_collate([getattr(data, split)[i][0] for i in range(n)])


def test_without_language_the_loss_is_the_sum_of_head_cross_entropies(
        setup: tuple[NLAAdapter, dict[str, Any], Any, VKNet], tiny: Dataset) -> None:
    adapter, config, data, model = setup
    plain = {**config, "language": {**config["language"], "label_smoothing": "none",
                                    "imm": False, "input_mixup": False}}
    (stage,) = adapter.stages(plain)
    inputs = _batch(data, "train")
    targets = torch.as_tensor(tiny.labels("train")[:2])
    model.eval()  # no dropout or BN updates between the two forwards
    loss, logits = adapter.training_loss(model, inputs, targets, 0, plain, stage)
    heads = model(**inputs)["logits"]
    expected = sum(functional.cross_entropy(heads[h], targets) for h in HEADS)
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(logits, heads["fuse"])
    full, _ = adapter.training_loss(model, inputs, targets, 0, {**config, "language": {
        **config["language"], "input_mixup": False}}, stage)
    assert torch.isfinite(full) and full > loss  # smoothing and mixup add to it


def test_the_ema_step_moves_each_main_classifier_towards_its_word_classifier(
        setup: tuple[NLAAdapter, dict[str, Any], Any, VKNet]) -> None:
    adapter, config, _, model = setup
    (stage,) = adapter.stages(config)
    before = model.main_classifier("fuse").weight.detach().clone()
    word = model.word_classifier("fuse").weight.detach().clone()
    adapter.after_step(model, 0, config, stage)  # epoch 0: beta 0.99
    torch.testing.assert_close(model.main_classifier("fuse").weight, 0.99 * before + 0.01 * word)


def test_the_ensembles_are_log_sums_of_the_head_softmaxes(
        setup: tuple[NLAAdapter, dict[str, Any], Any, VKNet]) -> None:
    adapter, config, data, model = setup
    inputs = _batch(data, "test")
    model.eval()
    with torch.no_grad():
        out = adapter.predict_heads(model, inputs, config)
        heads = model(**{k: v[:, 0] for k, v in inputs.items()})["logits"]  # one test window
    assert set(out) == set(STREAMS)
    expected = torch.log(sum(functional.softmax(heads[h], -1) for h in FUSE_HEADS))
    torch.testing.assert_close(out["ensemble_last"], expected)
    torch.testing.assert_close(out["fuse"], functional.log_softmax(heads["fuse"], -1))
