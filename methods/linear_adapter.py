"""The linear baseline: pooled keypoint statistics and a multinomial logistic regression whose
C is chosen on val (docs/methods/linear.md). Every leaderboard gets a row that says whether a
deep method beats a linear model on the same data, splits and metrics.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np

from slrbench.config import apply_overrides
from slrbench.datasets.base import Dataset, DatasetSpec
from slrbench.errors import SlrbenchError
from slrbench.methods.base import MethodSpec, SolverAdapter, SolverFit
from slrbench.methods.linear_features import (
    FeatureConfig,
    feature_dim,
    pooled_features,
)
from slrbench.methods.skeleton_adapter import check_pose
from slrbench.metrics import topk_hits

STREAM = "pooled"
# Per preset: the C values tried on val (log-spaced) and the solver's iteration cap.
FIT_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"c_grid": [0.001, 0.01, 0.1, 1.0, 10.0], "max_iter": 1000, "tol": 1e-4},
    "paper": {"c_grid": [float(c) for c in np.logspace(-4, 2, 13).round(6)], "max_iter": 3000,
              "tol": 1e-5},
}

SPEC = MethodSpec(
    name="linear",
    title="Linear baseline (pooled keypoint statistics + logistic regression)",
    paper="slrbench baseline (no paper): a classical reference row for every pose leaderboard",
    upstream="none (slrbench design; scikit-learn LogisticRegression, lbfgs)",
    modalities=("pose",),
    streams=(STREAM,),
    presets=tuple(FIT_PRESETS),
    default_preset="tiny",
    adapter_version="1",
    own_design=True,
    summary="Per sample, 98 body and hand coordinates in a shoulder-centred frame (hand points "
    "relative to their wrist, left-dominant signers mirrored) pooled over time into 787 "
    "statistics; standardised on train; multinomial logistic regression, C chosen on val.",
    divergences=(
        "no upstream: every choice is slrbench's and listed in the record's decisions",
        "fitted on train only; val chooses C and is never merged into the training data",
        "a class absent from train gets a logit below every other one in its row",
    ),
)


class LinearAdapter(SolverAdapter):
    spec = SPEC

    def resolve_config(
        self, preset: str, spec: DatasetSpec, stream: str, overrides: dict[str, Any]
    ) -> dict[str, Any]:
        self.check_preset(preset)
        config: dict[str, Any] = {
            "method": SPEC.name,
            "preset": preset,
            "stream": stream,
            "features": FeatureConfig().to_dict(),
            "fit": dict(FIT_PRESETS[preset]),
            "test_protocol": {"clips": 1, "frames": "all frames of the clip", "flip": False},
            "decisions": [
                "linear.features=pooled_v1",
                "linear.hands=relative_to_wrist",
                "linear.dominant_hand=most_moving",
                "linear.standardize=train",
                "linear.selection=val_pi@1",
            ],
        }
        config = apply_overrides(config, overrides)
        FeatureConfig.from_dict(config["features"])  # refuse bad feature fields now
        _check_fit(config["fit"])
        return config

    def fit(self, dataset: Dataset, config: dict[str, Any], seed: int) -> SolverFit:
        check_pose(dataset, SPEC.name)
        tic = time.perf_counter()
        features = FeatureConfig.from_dict(config["features"])
        fit = config["fit"]
        x, seconds = {}, {}
        for split in ("train", "val", "test"):
            start = time.perf_counter()
            x[split] = pooled_features(dataset.pose(split), features)
            seconds[split] = time.perf_counter() - start
        y_train, y_val = dataset.labels("train"), dataset.labels("val")
        mean, scale = _standardizer(x["train"])
        z = {split: (values - mean) / scale for split, values in x.items()}

        num_classes = dataset.spec.num_classes
        model, c, val_acc, tried = _search_c(z["train"], y_train, z["val"], y_val, fit, seed,
                                             num_classes)
        state = {
            "feature_mean": mean, "feature_scale": scale,
            "coef": model.coef_, "intercept": model.intercept_,
            "classes": model.classes_.astype(np.int64),
        }
        # Fitting time: train features, standardisation and the C search; extracting the val
        # and test features counts as prediction, like the epoch loop's predict step.
        fit_time_s = time.perf_counter() - tic - seconds["val"] - seconds["test"]
        scores = {}
        for split in ("val", "test"):  # prediction time: this split's features, then logits
            start = time.perf_counter()
            scores[split] = _logits(model, z[split], num_classes)
            seconds[split] += time.perf_counter() - start
        return SolverFit(
            scores=scores,
            predict_s={split: seconds[split] for split in ("val", "test")},
            state=state,
            selection={"C": c, "val_pi@1": round(val_acc, 6), "tried": tried,
                       "feature_dim": feature_dim(features)},
            params=int(model.coef_.size + model.intercept_.size),
            fit_time_s=fit_time_s,
        )

    def describe_presets(self) -> list[dict[str, Any]]:
        dim = feature_dim(FeatureConfig())
        return [
            {
                "preset": preset,
                "params (K=20, 226, 2000)": ", ".join(
                    f"{(dim + 1) * k:,}" for k in (20, 226, 2000)),
                "features": f"{dim} pooled statistics",
                "recipe": f"C from {len(fit['c_grid'])} values in [{min(fit['c_grid'])}, "
                          f"{max(fit['c_grid'])}], lbfgs max_iter {fit['max_iter']}",
            }
            for preset, fit in FIT_PRESETS.items()
        ]


def _check_fit(fit: dict[str, Any]) -> None:
    """Values of the "fit" section (its fields are fixed: `apply_overrides` refuses others)."""
    grid = fit["c_grid"]
    if (not isinstance(grid, list) or not grid or
            not all(isinstance(c, (int, float)) and not isinstance(c, bool) and 0 < c < 1e6
                    for c in grid)):
        raise SlrbenchError(f"fit.c_grid: found {grid!r}; expected a non-empty list of numbers "
                            "in (0, 1e6)")
    iterations = fit["max_iter"]
    if isinstance(iterations, bool) or not isinstance(iterations, int) or \
            not 1 <= iterations <= 100_000:
        raise SlrbenchError(f"fit.max_iter: found {iterations!r}; expected an integer from 1 "
                            "to 100000")
    tol = fit["tol"]
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not 0 < tol < 1:
        raise SlrbenchError(f"fit.tol: found {tol!r}; expected a number in (0, 1)")


def _search_c(z_train: np.ndarray, y_train: np.ndarray, z_val: np.ndarray, y_val: np.ndarray,
              fit: dict[str, Any], seed: int, num_classes: int
              ) -> tuple[Any, float, float, list[dict[str, Any]]]:
    """Fit one model per C of the grid; keep the best on val top-1 (ties: the smaller C)."""
    best: tuple[float, float, Any] | None = None
    tried = []
    for c in sorted(fit["c_grid"]):  # ascending: the first of equal scores is the smaller C
        model = _logistic(c, fit, seed).fit(z_train, y_train)
        val_acc = float(topk_hits(_logits(model, z_val, num_classes), y_val, 1).mean())
        tried.append({"C": c, "val_pi@1": round(val_acc, 6),
                      "iterations": int(np.max(model.n_iter_))})
        if best is None or val_acc > best[0]:
            best = (val_acc, c, model)
    assert best is not None  # the grid is never empty (_check_fit)
    val_acc, c, model = best
    return model, c, val_acc, tried


def _standardizer(train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and scale of the training features (constant columns keep scale 1)."""
    mean = train.mean(axis=0)
    scale = train.std(axis=0)
    return mean, np.where(scale > 1e-12, scale, 1.0)


def _logistic(c: float, fit: dict[str, Any], seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression  # a second or so to import

    return LogisticRegression(C=c, max_iter=fit["max_iter"], tol=fit["tol"], random_state=seed)


def _logits(model: Any, z: np.ndarray, num_classes: int) -> np.ndarray:
    """(N, K) logits in class order; classes absent from train sit below every row's minimum."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow in exp is harmless here
        present = np.asarray(model.decision_function(z), dtype=np.float64)
    if present.ndim == 1:  # two classes in train: sklearn returns one column
        present = np.stack([-present, present], axis=1) / 2
    logits = np.empty((z.shape[0], num_classes))
    logits[:] = (present.min(axis=1) - 1.0)[:, None]
    logits[:, model.classes_] = present
    return logits
