"""A quick difficulty proxy for calibrating SynthSign's knobs without training a network.

Two feature sets from the detected pose, each fed to a linear classifier (or a small MLP)
trained on `train` and scored on `test`:

* body: the 27 SAM-SLR joints, loop-padded/truncated to 40 frames, centred on the nose's
  time-mean, flattened (what a single-joint-stream skeleton model sees, minus its inductive bias);
* hand: both hands' 20 finger points relative to their own wrist (hand detail only).

Reported: top-1 overall, and the pairwise accuracy on each kind of minimal pair (for every
pair (a, b) and every test sample of a or b: does the true class score above the other one?).
Body features should confuse handshape pairs more than hand features do.

    python -m slrbench.datasets.synthsign.proxy --preset tiny --seed 0
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from . import layout as L
from .dataset import SynthSign, load_synthsign
from .phonology import PAIR_KINDS

T_PROXY = 40


def _loop_pad(x: np.ndarray, length: int, t: int) -> np.ndarray:
    idx = np.arange(t) % max(int(length), 1)
    return x[idx]


def features(ds: SynthSign, split: str, kind: str, t: int = T_PROXY) -> np.ndarray:
    pose = ds.pose(split)
    out = []
    for x, n in zip(pose.data, pose.lengths):
        x = _loop_pad(x[:n], n, t)  # (t, 133, 3)
        if kind == "body":
            nose = x[:, L.NOSE]
            ok = nose[:, 2] > 0
            centre = nose[ok, :2].mean(0) if ok.any() else np.zeros(2)
            pts = x[:, L.SAMSLR_27]
            xy = np.where(pts[..., 2:] > 0, pts[..., :2] - centre, 0.0)
        elif kind == "hand":
            parts = []
            for base in (L.LEFT_HAND, L.RIGHT_HAND):
                h = x[:, base:base + 21]
                rel = h[:, 1:, :2] - h[:, :1, :2]
                parts.append(np.where(h[:, 1:, 2:] > 0, rel, 0.0))
            xy = np.concatenate(parts, 1)
        else:
            raise ValueError(kind)
        out.append(xy.reshape(-1))
    return np.asarray(out, np.float32)


def _classifier(model: str, seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if model == "logreg":
        clf = LogisticRegression(C=0.05, max_iter=300)
    elif model == "mlp":
        clf = MLPClassifier(hidden_layer_sizes=(256,), alpha=1e-2, max_iter=300,
                            early_stopping=True, random_state=seed)
    else:
        raise ValueError(model)
    return make_pipeline(StandardScaler(), clf)


def pair_accuracy(scores: np.ndarray, labels: np.ndarray,
                  pairs: list[tuple[int, int, str]]) -> dict[str, float]:
    """Mean over pairs of each kind of P(score[true] > score[other]) on samples of the pair."""
    res: dict[str, list[float]] = {k: [] for k in PAIR_KINDS}
    for a, b, kind in pairs:
        for true, other in ((a, b), (b, a)):
            sel = labels == true
            if sel.any():
                res[kind].append(float(np.mean(scores[sel, true] > scores[sel, other])))
    return {k: float(np.mean(v)) if v else float("nan") for k, v in res.items()}


def proxy_report(ds: SynthSign, model: str = "logreg", seed: int = 0) -> dict[str, Any]:
    ytr, yte = ds.labels("train"), ds.labels("test")
    report: dict[str, Any] = {"chance": 1.0 / ds.num_classes, "model": model}
    for kind in ("body", "hand"):
        t0 = time.time()
        clf = _classifier(model, seed).fit(features(ds, "train", kind), ytr)
        xte = features(ds, "test", kind)
        scores = np.full((len(yte), ds.num_classes), -np.inf)
        scores[:, clf.classes_] = clf.predict_log_proba(xte)
        report[kind] = {
            "top1": float(np.mean(scores.argmax(1) == yte)),
            "pairs": pair_accuracy(scores, yte, ds.minimal_pairs),
            "seconds": round(time.time() - t0, 1),
        }
    return report


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", default="logreg", choices=["logreg", "mlp"])
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--set", nargs="*", default=[], metavar="KNOB=VALUE",
                    help="config overrides, e.g. hand_jitter_px=4")
    args = ap.parse_args(argv)
    overrides = {}
    for item in args.set:
        k, v = item.split("=", 1)
        overrides[k] = float(v) if "." in v or "e" in v else int(v)
    ds = load_synthsign(args.preset, args.seed, cache_dir=args.cache_dir, **overrides)
    rep = proxy_report(ds, args.model, args.seed)
    print(f"SynthSign {args.preset} seed {args.seed} {overrides or ''}: chance "
          f"{rep['chance']:.3f}, model {args.model}")
    for kind in ("body", "hand"):
        r = rep[kind]
        pairs = ", ".join(f"{k} {v:.2f}" for k, v in r["pairs"].items())
        print(f"  {kind:4s} top-1 {r['top1']:.3f}  pairwise: {pairs}  ({r['seconds']} s)")


if __name__ == "__main__":
    main()
