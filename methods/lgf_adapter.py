"""LGF-SLR (hand local-global fusion) as a documented reconstruction (docs/methods/lgf.md).

Upstream (``MeiqiZhang7/LGF-SLR`` @ b4f7077) never published code: only a README naming a global
feature stream (upper body) and two local ones (left hand, right hand), each trained in the
four SL-GCN modalities, fused in two levels with Bayesian-optimised weights. Everything else is
a slrbench choice, listed in ``SPEC.divergences`` and recorded per run in ``config["decisions"]``.

Streams are ``<part>_<modality>``: part ``body`` (the 27-joint SAM-SLR array), ``lhand`` or
``rhand`` (one hand), modality ``j``, ``b``, ``jm`` or ``bm``; 12 in all, each an SL-GCN
(`slrbench.methods.slgcn`) on its own graph. ``lhand``/``rhand`` follow the keypoint layout's
labels (COCO-WholeBody "left"/"right"); in frame-flipped SAM-SLR arrays COCO-left is the
signer's anatomical right (docs/methods/samslr-pipeline.md#pose-extraction, recorded as
``pose.frame_flipped``).

Hand streams differ from SL-GCN's data side in three ways (config ``data.hand``):

* subset ``hand10`` (the 10 hand nodes of the 27 layout) or ``hand21`` (full COCO hands);
* normalisation before the streams are derived, so bones and motion share it: centre on the
  hand root's time-mean over detected frames (docs/methods/lgf.md#reconstruction-decisions, the
  analogue of SL-GCN's nose centering; alternative: the root of every frame), optionally divide by
  the median palm size (root to the four finger MCPs) over detected frames. Frames where the
  detector lost the hand (all scores <= ``min_score``; whole-body detectors write x = y = score = 0)
  are excluded from the statistics and set to the centre, so a lost hand neither drags the centre
  towards the image corner nor turns into a frame-sized jump in the motion streams;
* no horizontal flip (a flipped left hand would look like a right hand inside a single-hand
  model) and no feeder centering (done above); the random shift stays SL-GCN's (pixels), or
  ``HAND_SHIFT_PALM`` palm units when scaled.

Palm scaling is off by default: on tiny SynthSign val (former 30-epoch SGD recipe, seed 0) it
changed nothing beyond noise (rhand_j 0.842 vs 0.858 unscaled, lhand_j 0.283 vs 0.292,
rhand_b 0.833 vs 0.817), so the documented default stands.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from slrbench.config import apply_overrides, check_fields
from slrbench.datasets.base import Dataset, DatasetSpec
from slrbench.datasets.layouts import KeypointLayout, convert, get_layout, supported_conversions
from slrbench.datasets.skeleton import prepare_stream_arrays
from slrbench.errors import SlrbenchError
from slrbench.methods.base import FusionRecipe, MethodSpec, PublishedResult
from slrbench.methods.blocks.gcn import STCAttention
from slrbench.methods.skeleton_adapter import (
    augment_section,
    parameter_counts,
    recipe_text,
    stored_text,
)
from slrbench.methods.slgcn import PRESETS, SLGCN
from slrbench.methods.slgcn_adapter import LAYOUT as BODY_LAYOUT
from slrbench.methods.slgcn_adapter import RECIPES, SLGCNAdapter
from slrbench.methods.slgcn_adapter import SPEC as SLGCN_SPEC
from slrbench.methods.slgcn_adapter import STREAMS as MODALITIES

PARTS: tuple[str, ...] = ("body", "lhand", "rhand")
HAND_SIDES: dict[str, str] = {"lhand": "left", "rhand": "right"}
STREAMS: tuple[str, ...] = tuple(f"{part}_{m}" for part in PARTS for m in MODALITIES)
HAND_SUBSETS: tuple[str, ...] = ("hand10", "hand21")
HAND_CENTERS: tuple[str, ...] = ("root_mean", "root_frame")
HAND_SCALES: tuple[str, ...] = ("palm", "none")
# Palm: the finger bases, rigid whatever the handshape (finger tips would normalise it away).
PALM_POINTS: tuple[str, ...] = ("index_mcp", "middle_mcp", "ring_mcp", "pinky_mcp")
# Random shift of hand streams in palm units: about SL-GCN's +-10 px relative to a body
# (a few per cent of the reference length), (reconstruction).
HAND_SHIFT_PALM = 0.1


def split_stream(stream: str) -> tuple[str, str]:
    """``"lhand_bm"`` -> ``("lhand", "bm")``."""
    part, _, modality = stream.partition("_")
    if part not in PARTS or modality not in MODALITIES:
        raise SlrbenchError(
            f"stream: found '{stream}'; expected <part>_<modality> with part in "
            f"{', '.join(PARTS)} and modality in {', '.join(MODALITIES)} (e.g. body_j, lhand_bm)"
        )
    return part, modality


def hand_layout(subset: str, part: str) -> str:
    """Layout name of one hand part: ``hand10_left``, ``hand21_right``, ..."""
    if part not in HAND_SIDES:
        raise SlrbenchError(f"hand part: found '{part}'; expected one of {', '.join(HAND_SIDES)}")
    return f"{subset}_{HAND_SIDES[part]}"


@dataclass(frozen=True)
class HandNorm:
    """The ``data.hand`` section of a hand stream (see the module docstring)."""

    subset: str = "hand10"
    center: str = "root_mean"
    scale: str = "none"
    min_score: float = 0.0

    def __post_init__(self) -> None:
        for name, value, allowed in (
            ("subset", self.subset, HAND_SUBSETS),
            ("center", self.center, HAND_CENTERS),
            ("scale", self.scale, HAND_SCALES),
        ):
            if value not in allowed:
                raise SlrbenchError(
                    f"data.hand.{name}: found '{value}'; expected one of {', '.join(allowed)}"
                )
        if not 0.0 <= self.min_score < 1.0:
            raise SlrbenchError(f"data.hand.min_score: found {self.min_score}; expected 0 <= s < 1")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HandNorm:
        check_fields(cls, data, "data.hand")
        return cls(**data)


def palm_nodes(layout: KeypointLayout | str) -> tuple[int, ...]:
    """Indices of the four finger MCPs in a hand layout."""
    lay = get_layout(layout)
    nodes = tuple(i for i, n in enumerate(lay.names) if n.endswith(PALM_POINTS))
    if len(nodes) != len(PALM_POINTS):
        raise SlrbenchError(
            f"layout {lay.name}: found {len(nodes)} finger MCPs; expected {len(PALM_POINTS)} "
            f"({', '.join(PALM_POINTS)})"
        )
    return nodes


def detected_frames(joints: np.ndarray, lengths: np.ndarray, min_score: float) -> np.ndarray:
    """(N, T) bool: inside the valid length and at least one point scored above ``min_score``."""
    valid = np.arange(joints.shape[1])[None, :] < np.asarray(lengths)[:, None]
    return valid & (joints[..., 2] > min_score).any(axis=-1)


def normalise_hands(
    joints: np.ndarray, lengths: np.ndarray, layout: KeypointLayout | str, norm: HandNorm
) -> np.ndarray:
    """Centre and scale hand keypoints (N, T, V, C = x, y, score); a new float32 array.

    Statistics use detected frames only; undetected and padding frames get x = y = 0 (the
    centre) and keep their score. A sample without any detected frame stays all zero in x, y.
    """
    lay = get_layout(layout)
    joints = np.asarray(joints, dtype=np.float32)
    if joints.ndim != 4 or joints.shape[2] != lay.num_nodes or joints.shape[3] < 3:
        raise SlrbenchError(
            f"hand joints: shape {joints.shape}; expected (N, T, {lay.num_nodes}, 3) "
            f"for layout '{lay.name}'"
        )
    seen = detected_frames(joints, lengths, norm.min_score)  # (N, T)
    weight = seen[..., None].astype(np.float64)  # (N, T, 1)
    xy = joints[..., :2].astype(np.float64)
    root = xy[:, :, lay.center]  # (N, T, 2)
    if norm.center == "root_mean":
        centre = (root * weight).sum(1) / np.maximum(weight.sum(1), 1.0)  # (N, 2)
        xy -= centre[:, None, None, :]
    else:
        xy -= root[:, :, None, :]
    if norm.scale == "palm":
        palm = np.linalg.norm(
            joints[..., palm_nodes(lay), :2] - joints[:, :, lay.center, None, :2], axis=-1
        ).mean(-1)  # (N, T)
        with warnings.catch_warnings():  # samples without any detected frame: handled below
            warnings.simplefilter("ignore", RuntimeWarning)
            size = np.nanmedian(np.where(seen, palm, np.nan), axis=1)  # (N,)
        size = np.where(np.isfinite(size) & (size > 0), size, 1.0)
        xy /= size[:, None, None, None]
    xy[~seen] = 0.0
    out = joints.copy()
    out[..., :2] = xy
    return out


# --------------------------------------------------------------------------------------------
# Method facts
# --------------------------------------------------------------------------------------------
_SLGCN_WEIGHTS = SLGCN_SPEC.fusion.weights_for("default") if SLGCN_SPEC.fusion else {}
# Level 1: SL-GCN's hand-set modality weights within each part; level 2: equal part weights
# (docs/methods/lgf.md#default-fusion). Group names double as the level-2 keys.
FUSION_WEIGHTS: dict[str, float] = {
    **{f"{part}_{m}": w for part in PARTS for m, w in _SLGCN_WEIGHTS.items()},
    **dict.fromkeys(PARTS, 1.0),
}

_README = "[R] MeiqiZhang7/LGF-SLR README (abstract)"
# The README feeds "test-best" result pickles to its Bayesian optimisation (inferred).
_BO_ON_EVAL = "evaluated split (BO weights, inferred)"

SPEC = MethodSpec(
    name="lgf",
    title="LGF-SLR (hand local-global fusion, reconstruction)",
    paper="LGF-SLR: Hand Local-Global Fusion Network for Skeleton-Based Sign Language "
    "Recognition (README abstract; no paper reference given)",
    upstream="MeiqiZhang7/LGF-SLR @ b4f7077 (README only, never any code); backbone from "
    "jackyjsy/CVPR21Chal-SLR @ de6c53a (SL-GCN)",
    modalities=("pose",),
    streams=STREAMS,
    presets=tuple(RECIPES),
    default_preset="tiny",
    adapter_version="1",
    reconstruction=True,
    summary="Three skeleton feature streams - upper body (27 SAM-SLR joints), left hand, right "
    "hand - each in joint, bone, joint-motion and bone-motion form: 12 SL-GCN models, fused "
    "per part and then across parts (two-level fusion, weights searched on val).",
    divergences=(
        "whole method is a reconstruction: upstream published a README only",
        "backbone: SL-GCN with its recipe for every stream (inferred from the README's "
        "references; alternative: DSTA backbone)",
        "global stream input: samslr_27, all 27 nodes (inferred: same preprocessed folder as "
        "SAM-SLR)",
        "hand subset: hand10 = the 27 layout's hand nodes (default) or hand21 = full COCO hands "
        "(data.hand.subset); upstream unknown",
        "hand graphs: hand10 tree rooted at the wrist (root -> thumb tip and four MCPs -> tips), "
        "hand21 standard 20-edge tree; spatial labelling as SL-GCN",
        "hand normalisation (upstream unknown): subtract the hand root's time-mean over "
        "detected frames, lost-hand frames set to the centre, before the streams are derived "
        "(data.hand.center / min_score); optional palm-size scaling (data.hand.scale=palm)",
        "hand streams: no horizontal flip (a flipped left hand is a right hand), no feeder "
        "centering (done offline), SL-GCN's random shift",
        "hand streams use SL-GCN's windows, epochs and learning rates (upstream unknown)",
        "STC spatial kernel for hand graphs: V - 1 if V is even, else V (9 for hand10, 21 for "
        "hand21; MS-AAGCN rule)",
        "lhand / rhand follow the keypoint layout's left/right labels, not anatomy",
        "fusion: two levels on raw logits normalised by the weight sum; initial weights SL-GCN "
        "1.0/0.9/0.5/0.5 per part and equal across parts; search = Optuna TPE, weights in "
        "[0, 2], 200 trials per level, objective val P-I@1 (ties: lower val cross-entropy), "
        "on val only (upstream: BO on the reported split, library unknown)",
        *(f"as SL-GCN: {d}" for d in SLGCN_SPEC.divergences),
    ),
    published=(
        PublishedResult("autsl", "12-stream two-level BO fusion", "pi@1", 95.93, _README,
                        _BO_ON_EVAL, "†"),
        PublishedResult("wlasl2000", "12-stream two-level BO fusion ('WLASL'; subset and split "
                        "not stated)", "pi@1", 52.74, _README, _BO_ON_EVAL, "†‡?"),
        PublishedResult("slr500", "12-stream two-level BO fusion ('CSL'; SLR500 inferred)",
                        "pi@1", 98.38, "[R] MeiqiZhang7/LGF-SLR README", _BO_ON_EVAL, "†"),
    ),
    fusion=FusionRecipe(
        strategy="hier",
        score_space="logits",
        weights={"default": FUSION_WEIGHTS},
        source="upstream: Bayesian optimisation per level on the reported split, weights never "
        "published; initial weights: SL-GCN 1.0/0.9/0.5/0.5 within each part, equal across "
        "parts; slrbench searches on val",
        # the fixed fallback is slrbench's choice (hand-set SL-GCN weights), not upstream's tuning
        test_tuned=False,
        groups={part: tuple(f"{part}_{m}" for m in MODALITIES) for part in PARTS},
    ),
)


class LGFAdapter(SLGCNAdapter):
    """SL-GCN per stream; hand streams get their own layout, graph and normalisation.

    Overrides under ``data.hand.`` only concern hand streams and are skipped for body streams,
    so one override set serves a whole 12-stream run.
    """

    spec = SPEC
    label_sections = ("lgf",)  # part and modality names; the data section says what is read

    def resolve_config(
        self, preset: str, spec: DatasetSpec, stream: str, overrides: dict[str, Any]
    ) -> dict[str, Any]:
        part, modality = split_stream(stream)
        hand_keys = {k: v for k, v in overrides.items() if k.startswith("data.hand.")}
        rest = {k: v for k, v in overrides.items() if k not in hand_keys}
        config = super().resolve_config(preset, spec, modality, {})
        config.update({"method": SPEC.name, "stream": stream, "stream_order": list(STREAMS)})
        config["lgf"] = {"part": part, "modality": modality}
        decisions = ["lgf.backbone=slgcn", f"lgf.part={part}"]
        if part == "body":
            decisions.append(f"lgf.global_input={BODY_LAYOUT}")
        else:
            if "data.layout" in rest:
                raise SlrbenchError(
                    f"override 'data.layout' for stream '{stream}': found "
                    f"{rest['data.layout']!r}; expected data.hand.subset instead "
                    "(hand layouts follow the subset)"
                )
            hand_overrides = {k.removeprefix("data."): v for k, v in hand_keys.items()}
            hand_section = apply_overrides({"hand": HandNorm().to_dict()}, hand_overrides)
            hand = HandNorm.from_dict(hand_section["hand"])
            # SL-GCN's flip-width and shift decisions do not apply to hand streams.
            config["decisions"] = [
                d for d in config["decisions"] if not d.startswith(("slgcn.flip", "slgcn.shift"))
            ]
            decisions += _resolve_hand_data(config["data"], spec, part, hand)
        config["decisions"] = config["decisions"] + decisions
        config = apply_overrides(config, rest)
        if part != "body" and config["data"]["augment"]["flip_prob"] > 0:
            raise SlrbenchError(
                f"augment.flip_prob for stream '{stream}': found "
                f"{config['data']['augment']['flip_prob']}; expected 0 (a flipped single hand "
                "is the other hand; hand streams are not flipped)"
            )
        return config

    def stream_arrays(
        self, dataset: Dataset, data_config: dict[str, Any], split: str
    ) -> np.ndarray:
        if "hand" not in data_config:
            return super().stream_arrays(dataset, data_config, split)
        pose = self.pose(dataset, data_config, split)
        layout = data_config["layout"]
        hands = normalise_hands(
            convert(pose.data, pose.layout, layout),
            pose.lengths,
            layout,
            HandNorm.from_dict(data_config["hand"]),
        )
        return prepare_stream_arrays(
            hands, pose.lengths, layout, layout, data_config["stream"], int(data_config["t_store"])
        )

    def describe_presets(self) -> list[dict[str, Any]]:
        rows = []
        for preset, recipe in RECIPES.items():
            for graph in (BODY_LAYOUT, "hand10_left", "hand21_left"):
                layout = get_layout(graph)
                name = "body" if graph == BODY_LAYOUT else graph.split("_")[0] + " (each hand)"
                rows.append(
                    {
                        "preset": preset,
                        "part graph": f"{name}, V={layout.num_nodes}",
                        "params per model": parameter_counts(
                            functools.partial(SLGCN, layout=layout, config=PRESETS[preset])),
                        "frames": f"{stored_text(recipe)} / train crop {recipe['window']}",
                        "recipe": recipe_text(recipe["train"]),
                    }
                )
        return rows


def _resolve_hand_data(
    data: dict[str, Any], spec: DatasetSpec, part: str, hand: HandNorm
) -> list[str]:
    """Turn SL-GCN's data section into a hand stream's (in place); returns its decisions."""
    layout = hand_layout(hand.subset, part)
    _check_hand_source(spec, layout)
    data["layout"] = layout
    data["hand"] = hand.to_dict()
    palm = hand.scale == "palm"
    shift = {"shift_px": HAND_SHIFT_PALM} if palm else {}
    data["augment"] = augment_section(
        spec, data["augment"]["window"], flip_prob=0.0, center=False, **shift
    )
    kernel = STCAttention(2, get_layout(layout).num_nodes).spatial_kernel
    return [
        f"lgf.hand_subset={hand.subset}",
        f"lgf.hand_graph={hand.subset}_tree",
        f"lgf.hand_side=layout_label:{HAND_SIDES[part]}",
        f"lgf.hand_center={hand.center}",
        f"lgf.hand_scale={hand.scale}",
        f"lgf.hand_lost=score<={hand.min_score}:excluded_and_centred",
        "lgf.hand_flip=off",
        "lgf.hand_recipe=slgcn",
        f"lgf.hand_shift={f'{HAND_SHIFT_PALM}_palm' if palm else 'scaled_to_frame'}",
        f"lgf.stc_spatial_kernel={kernel}",
    ]


def _check_hand_source(spec: DatasetSpec, layout: str) -> None:
    """The dataset's keypoints must contain the requested hand points."""
    if spec.layout in (None, layout) or (spec.layout, layout) in supported_conversions():
        return
    raise SlrbenchError(
        f"data.hand.subset: layout '{layout}' cannot be taken from dataset {spec.name} "
        f"(keypoint layout '{spec.layout}'); expected hand10 (hand21 needs 21-point hands, "
        "e.g. coco_wholebody_133 input)"
    )
