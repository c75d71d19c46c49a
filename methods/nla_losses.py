"""NLA-SLR's language-aware training signals (docs/methods/nla-losses.md): language-aware label
smoothing, inter-modality mixup with its own classifier and the EMA coupling to the main
classifier, input mixup, and their cosine schedules. Pure functions and one module, checked
against hand-computed cases in tests/test_nla_losses.py; the NLA-SLR network uses them.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional

from slrbench.errors import SlrbenchError


def soft_cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean over the leading axes of -sum(targets * log_softmax(logits)) over the last one."""
    return -(targets * functional.log_softmax(logits.float(), dim=-1)).sum(-1).mean()


def language_aware_targets(similarity: Tensor, labels: Tensor, epsilon: float = 0.2,
                           tau: float = 0.5) -> Tensor:
    """(B, K) soft targets: 1 - ε on the true class y; ε spread over the other classes by the
    softmax of their gloss similarity to y divided by τ (y itself excluded)."""
    if not 0 <= epsilon < 1 or tau <= 0:
        raise SlrbenchError(f"language-aware smoothing: found epsilon {epsilon}, tau {tau}; "
                            "expected 0 <= epsilon < 1 and tau > 0")
    rows = similarity[labels].float() / tau  # (B, K)
    rows = rows.scatter(1, labels[:, None], float("-inf"))
    targets = epsilon * torch.softmax(rows, dim=1)
    return targets.scatter(1, labels[:, None], 1.0 - epsilon)


def uniform_targets(labels: Tensor, num_classes: int, epsilon: float = 0.2) -> Tensor:
    """Plain label smoothing (a vocabulary without vectors): 1 - ε + ε/K on y, ε/K elsewhere
    (torch's `label_smoothing`)."""
    targets = torch.full((len(labels), num_classes), epsilon / num_classes, device=labels.device)
    return targets.scatter(1, labels[:, None], 1.0 - epsilon + epsilon / num_classes)


def mixed_targets(targets_a: Tensor, targets_b: Tensor, lam: float) -> Tensor:
    """Input mixup's target: λ·(targets of the sample) + (1 - λ)·(targets of its partner)."""
    return lam * targets_a + (1.0 - lam) * targets_b


def input_mixup(inputs: dict[str, Tensor], generator: torch.Generator | None = None,
                probability: float = 0.75, alpha: float = 0.8
                ) -> tuple[dict[str, Tensor], Tensor | None, float]:
    """NLA-SLR's batch-wise input mixup: with `probability`, λ ~ Beta(α, α) and every input
    mixed with the same shuffled copy of the batch. Returns (inputs, partner order or None,
    λ); λ = 1 and None when the batch is left alone. Draws from `generator` (None: torch's
    global generator, which the training checkpoints save, so a resumed run draws alike)."""
    if float(torch.rand((), generator=generator)) >= probability:
        return inputs, None, 1.0
    # Beta(α, α) from two Gamma draws through the same generator (torch's Beta takes none).
    a, b = _gamma(alpha, generator), _gamma(alpha, generator)
    lam = a / (a + b)
    first = next(iter(inputs.values()))
    order = torch.randperm(len(first), generator=generator).to(first.device)
    # lerp(partner, v, λ) = λ·v + (1 - λ)·partner in one pass over the clip (the heatmap
    # volumes are the largest tensors of a step; the three-op form cost a third of it).
    return {k: torch.lerp(v[order], v, lam) for k, v in inputs.items()}, order, lam


def _gamma(alpha: float, generator: torch.Generator | None) -> float:
    """One Gamma(α, 1) draw (Marsaglia and Tsang: normals and uniforms only)."""
    if alpha < 1:  # boost: Gamma(α) = Gamma(α + 1) · U^(1/α)
        return _gamma(alpha + 1, generator) * float(torch.rand((), generator=generator)) ** (
            1 / alpha)
    d = alpha - 1 / 3
    c = 1 / math.sqrt(9 * d)
    while True:
        x = float(torch.randn((), generator=generator))
        v = (1 + c * x) ** 3
        if v > 0 and math.log(float(torch.rand((), generator=generator))) < (
                0.5 * x * x + d - d * v + d * math.log(v)):
            return d * v


def imm_targets(labels: Tensor, num_classes: int, partner: Tensor | None = None,
                lam: float = 1.0) -> Tensor:
    """(B, K, K) targets of inter-modality mixup: the blend of a sample with gloss j gets 0.5 on
    j and 0.5 on the sample's class (1.0 on y when j = y); under input mixup the 0.5 on the
    class is split λ / (1 - λ) between the sample's class and its partner's."""
    batch = len(labels)
    eye = torch.eye(num_classes).expand(batch, num_classes, num_classes)  # j -> one-hot j
    own = functional.one_hot(labels, num_classes).float()[:, None, :]
    if partner is not None:
        own = lam * own + (1.0 - lam) * functional.one_hot(partner, num_classes).float()[:, None]
    return 0.5 * eye + 0.5 * own


def cosine_ramp(epoch: int, epochs: int) -> float:
    """½(1 + cos(π·epoch/epochs)): 1 at the first epoch, falling to 0 at the configured end
    (upstream hard-codes 100 epochs; slrbench uses the run's own count)."""
    return 0.5 * (1.0 + math.cos(math.pi * epoch / max(epochs, 1)))


def imm_weight(epoch: int, epochs: int, weight: float = 1.0) -> float:
    """The inter-modality mixup loss weight at `epoch`."""
    return weight * cosine_ramp(epoch, epochs)


def ema_beta(epoch: int, epochs: int) -> float:
    """The EMA keep-rate of the main classifier: 0.99 at the start, rising to 1.0."""
    return 1.0 - 0.01 * cosine_ramp(epoch, epochs)


@torch.no_grad()
def ema_update(main: nn.Linear, word: nn.Linear, beta: float) -> None:
    """main := β·main + (1 - β)·word (weights and biases), after every optimiser step."""
    for target, source in ((main.weight, word.weight), (main.bias, word.bias)):
        target.mul_(beta).add_(source, alpha=1.0 - beta)


class InterModalityMixup(nn.Module):
    """One head's inter-modality mixup: its pooled feature v (B, C) blended with every gloss
    embedding mapped into the feature space, f_j = v + W e_j, classified by a separate
    ("word-fused") linear classifier -> (B, K, K) logits. Upstream ranks the glosses by the
    head's logits and keeps the top `topk`, but `topk` is the vocabulary size in every config,
    so every gloss is used and the ranking cannot change the loss: slrbench skips it."""

    def __init__(self, vectors: Tensor, features: int) -> None:
        super().__init__()
        self.register_buffer("glosses", vectors.float(), persistent=False)  # frozen (K, D)
        self.mapper = nn.Linear(vectors.shape[1], features)
        self.classifier = nn.Linear(features, vectors.shape[0])

    def forward(self, features: Tensor) -> Tensor:
        mapped = self.mapper(self.glosses)  # (K, C)
        blended = features[:, None, :] + mapped[None]  # (B, K, C)
        return self.classifier(blended)  # (B, K, K)
