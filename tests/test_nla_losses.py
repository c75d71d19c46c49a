"""NLA-SLR's language-aware losses against hand-computed cases (docs/methods/nla-losses.md)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from slrbench.errors import SlrbenchError
from slrbench.methods.nla_losses import (
    InterModalityMixup,
    cosine_ramp,
    ema_beta,
    ema_update,
    imm_targets,
    imm_weight,
    input_mixup,
    language_aware_targets,
    mixed_targets,
    soft_cross_entropy,
    uniform_targets,
)

# Four classes; class 0 is close to 1, less to 2, unrelated to 3.
SIMILARITY = torch.tensor([[1.0, 0.8, 0.4, 0.0],
                           [0.8, 1.0, 0.2, 0.1],
                           [0.4, 0.2, 1.0, 0.3],
                           [0.0, 0.1, 0.3, 1.0]])


def test_language_aware_targets_follow_the_formula_on_four_classes() -> None:
    targets = language_aware_targets(SIMILARITY, torch.tensor([0, 3]), epsilon=0.2, tau=0.5)
    # class 0: others 0.8, 0.4, 0.0 -> exp(1.6), exp(0.8), exp(0) normalised, times 0.2
    e = [math.exp(1.6), math.exp(0.8), 1.0]
    expected0 = [0.8] + [0.2 * v / sum(e) for v in e]
    e3 = [math.exp(0.0), math.exp(0.2), math.exp(0.6)]
    expected3 = [0.2 * v / sum(e3) for v in e3] + [0.8]
    torch.testing.assert_close(targets, torch.tensor([expected0, expected3]))
    torch.testing.assert_close(targets.sum(1), torch.ones(2))
    assert targets[0, 1] > targets[0, 2] > targets[0, 3]  # the similar gloss gets more


def test_equal_similarities_give_plain_smoothing_over_the_other_classes() -> None:
    flat = torch.zeros(4, 4)  # e.g. glosses without vectors
    targets = language_aware_targets(flat, torch.tensor([2]), epsilon=0.3, tau=0.5)
    torch.testing.assert_close(targets, torch.tensor([[0.1, 0.1, 0.7, 0.1]]))


def test_uniform_targets_are_torch_label_smoothing() -> None:
    logits = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 1, 2, 3, 1])
    ours = soft_cross_entropy(logits, uniform_targets(labels, 4, 0.2))
    torch.testing.assert_close(ours, nn.functional.cross_entropy(logits, labels,
                                                                 label_smoothing=0.2))


def test_smoothing_settings_are_checked() -> None:
    with pytest.raises(SlrbenchError, match=r"found epsilon 1\.0, tau 0\.5"):
        language_aware_targets(SIMILARITY, torch.tensor([0]), epsilon=1.0)


def test_imm_targets_by_hand() -> None:
    targets = imm_targets(torch.tensor([1]), 3)
    torch.testing.assert_close(targets[0], torch.tensor([[0.5, 0.5, 0.0],
                                                         [0.0, 1.0, 0.0],
                                                         [0.0, 0.5, 0.5]]))
    mixed = imm_targets(torch.tensor([1]), 3, partner=torch.tensor([2]), lam=0.75)
    # the 0.5 on the class splits 0.375 (class 1) / 0.125 (class 2)
    torch.testing.assert_close(mixed[0], torch.tensor([[0.5, 0.375, 0.125],
                                                       [0.0, 0.875, 0.125],
                                                       [0.0, 0.375, 0.625]]))
    assert torch.allclose(mixed.sum(-1), torch.ones(1, 3))


def test_input_mixup_mixes_every_modality_with_one_partner() -> None:
    inputs = {"rgb": torch.arange(4.0)[:, None], "heatmap": 10 * torch.arange(4.0)[:, None]}
    mixed, order, lam = input_mixup(inputs, torch.Generator().manual_seed(0), probability=1.0)
    assert order is not None and 0 < lam < 1
    torch.testing.assert_close(mixed["rgb"], lam * inputs["rgb"] + (1 - lam) * inputs["rgb"][order])
    torch.testing.assert_close(mixed["heatmap"], 10 * mixed["rgb"])
    again = input_mixup(inputs, torch.Generator().manual_seed(0), probability=1.0)
    assert again[2] == lam and torch.equal(again[1], order)  # reproducible draws
    same, none, one = input_mixup(inputs, torch.Generator().manual_seed(0), probability=0.0)
    assert same is inputs and none is None and one == 1.0


def test_mixup_weights_follow_beta_alpha_alpha() -> None:
    generator = torch.Generator().manual_seed(1)
    inputs = {"x": torch.zeros(4, 1)}
    draws = np.array([input_mixup(inputs, generator, 1.0, alpha=0.8)[2] for _ in range(4000)])
    # Beta(0.8, 0.8): mean 1/2, variance 1 / (4 (2α + 1)) = 0.0962
    assert abs(draws.mean() - 0.5) < 0.02 and abs(draws.var() - 1 / (4 * 2.6)) < 0.01
    a, b = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    torch.testing.assert_close(mixed_targets(a, b, 0.7), torch.tensor([[0.7, 0.3]]))


def test_schedules_and_the_ema_update_by_hand() -> None:
    assert cosine_ramp(0, 10) == 1.0 and cosine_ramp(10, 10) == pytest.approx(0.0)
    assert cosine_ramp(5, 10) == pytest.approx(0.5)
    assert imm_weight(5, 10, weight=2.0) == pytest.approx(1.0)
    assert ema_beta(0, 10) == pytest.approx(0.99) and ema_beta(10, 10) == pytest.approx(1.0)
    main, word = nn.Linear(2, 1), nn.Linear(2, 1)
    with torch.no_grad():
        main.weight.fill_(1.0), main.bias.fill_(0.0)
        word.weight.fill_(3.0), word.bias.fill_(2.0)
    ema_update(main, word, beta=0.9)
    torch.testing.assert_close(main.weight, torch.full((1, 2), 1.2))  # 0.9 * 1 + 0.1 * 3
    torch.testing.assert_close(main.bias, torch.tensor([0.2]))


def test_inter_modality_mixup_blends_each_gloss_into_the_feature() -> None:
    torch.manual_seed(0)
    vectors = torch.randn(3, 5)
    imm = InterModalityMixup(vectors, features=4)
    features = torch.randn(2, 4)
    logits = imm(features)
    assert logits.shape == (2, 3, 3)
    expected = imm.classifier(features[1] + imm.mapper(vectors[2]))
    torch.testing.assert_close(logits[1, 2], expected)
    loss = soft_cross_entropy(logits, imm_targets(torch.tensor([0, 2]), 3))
    loss.backward()
    assert imm.mapper.weight.grad is not None and imm.classifier.weight.grad is not None
