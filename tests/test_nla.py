"""NLA-SLR as a method: its unit, streams and stage, the language switches, the loss against
hand-computed cross-entropies, the EMA step, the in-network ensembles, the gloss vectors a run
uses, and (slow) that the tiny preset learns with every head (docs/methods/nla.md)."""

from __future__ import annotations

import os
from typing import Any

import pytest
import torch
from cli_errors import one_line
from torch.nn import functional
from torch.utils.data import default_collate

from slrbench.datasets.base import Dataset
from slrbench.datasets.registry import load_dataset
from slrbench.errors import SlrbenchError
from slrbench.methods.nla import VKNet
from slrbench.methods.nla_adapter import (
    FUSE_HEADS,
    HEADS,
    STREAMS,
    UNIT,
    NLAAdapter,
    gloss_table,
)
from slrbench.methods.registry import MAIN_JOB_METHODS, METHOD_NAMES
from slrbench.store import RecordStore
from slrbench.training import RunRequest, run


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
    assert "nla" in METHOD_NAMES and "nla" in MAIN_JOB_METHODS


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


# ------------------------------------------------------------------------- gloss vectors
def _spec_with_classes(tiny: Dataset, classes: tuple[str, ...]) -> Any:
    return tiny.spec.__class__(**{**tiny.spec.__dict__, "classes": classes})


def test_the_config_records_the_vectors_it_uses(tiny: Dataset) -> None:
    adapter = NLAAdapter()
    language = adapter.resolve_config("tiny", tiny.spec, UNIT, {})["language"]
    assert language["vectors"] == "shipped" and "GloVe" in language["vectors_source"]
    assert len(language["vectors_sha256"]) == 64 and language["missing_glosses"] == []
    config = adapter.resolve_config("tiny", tiny.spec, UNIT, {"language.imm": False})
    assert config["model"]["language"] is False  # no mixup units where none are trained
    model = adapter.build_model(config, tiny.spec.num_classes)
    assert isinstance(model, VKNet) and len(model.imm) == 0
    with pytest.raises(SlrbenchError, match=r"language\.label_smoothing: found 'lals'; expected "
                                            "one of language_aware, uniform, none"):
        adapter.resolve_config("tiny", tiny.spec, UNIT, {"language.label_smoothing": "lals"})


def test_a_vocabulary_without_vectors_gets_plain_smoothing(tiny: Dataset) -> None:
    # NMFs-CSL's Chinese glosses: NLA-SLR trains them with plain smoothing and no mixup.
    spec = _spec_with_classes(tiny, tuple(f"词{i}" for i in range(tiny.spec.num_classes)))
    adapter = NLAAdapter()
    config = adapter.resolve_config("tiny", spec, UNIT, {})
    language = config["language"]
    assert (language["label_smoothing"], language["imm"]) == ("uniform", False)
    assert len(language["missing_glosses"]) == spec.num_classes
    assert "nla.no_gloss_vectors=plain_smoothing_no_imm" in config["decisions"]
    for key, value in (("label_smoothing", "language_aware"), ("imm", True)):
        with pytest.raises(SlrbenchError, match=rf"language.{key}: found {value!r} for "
                                                "synthsign-tiny, none of whose 20 glosses"):
            adapter.resolve_config("tiny", spec, UNIT, {f"language.{key}": value})


def test_user_vectors_size_the_mixup_and_are_checked_before_training(
        tiny: Dataset, tmp_path: Any) -> None:
    glosses = tiny.spec.classes
    path = tmp_path / "glosses.vec"
    rows = [f"{g.split()[0]} {i % 3} {(i * 7) % 5} 1" for i, g in enumerate(glosses)]
    path.write_text(f"{len(rows)} 3\n" + "\n".join(rows) + "\n", encoding="utf-8")
    adapter = NLAAdapter()
    config = adapter.resolve_config("tiny", tiny.spec, UNIT, {"language.vectors": str(path)})
    assert config["model"]["gloss_dim"] == 3
    assert config["language"]["vectors_source"] == "fastText glosses.vec"
    assert gloss_table(config, glosses).vectors.shape == (len(glosses), 3)
    path.write_text(f"{len(rows)} 3\n" + "\n".join(r + "0" for r in rows) + "\n",
                    encoding="utf-8")  # replaced after planning: last values 1 -> 10
    os.utime(path, ns=(1, path.stat().st_mtime_ns + 10**9))
    with pytest.raises(SlrbenchError, match="gloss vectors changed since the run was planned"):
        gloss_table(config, glosses)


def test_word_vectors_option(cli: Any, tmp_path: Any) -> None:
    code, _, err = cli("run", "--method", "slgcn", "--dataset", "synthsign-tiny",
                       "--word-vectors", str(tmp_path / "w.vec"), "--results", str(tmp_path))
    one_line(code, err, "--word-vectors", "slgcn", "expected one method that uses gloss "
             "vectors")
    code, _, err = cli("run", "--method", "nla", "--dataset", "synthsign-tiny",
                       "--word-vectors", str(tmp_path / "w.vec"), "--results", str(tmp_path))
    one_line(code, err, "--word-vectors", "w.vec", "cannot read")
    assert not (tmp_path / "runs").exists()


# ------------------------------------------------------------------------------ learning
@pytest.mark.slow
def test_tiny_learns_with_every_head(tiny: Dataset, tmp_path: Any) -> None:
    request = RunRequest(method=NLAAdapter(), dataset=tiny, preset="tiny", streams=("fuse",),
                         seed=0, progress=False)  # one stream asked: the whole unit trains
    outcomes = run(request, RecordStore(tmp_path), jobs=1, threads=1)
    test = {o.stream: o.metrics["test"]["pi@1"] for o in outcomes}
    assert list(test) == list(STREAMS)
    chance = 1 / tiny.spec.num_classes
    for head, value in test.items():
        assert value["value"] >= 3 * chance, (head, value)
