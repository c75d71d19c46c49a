"""Sign phonology: the parameter inventories, the class set built in families of minimal pairs,
and gloss assignment from the curated WLASL clusters (`glosses.json`).

A class is a tuple of phonological parameters. A family is a base sign plus variants that each
change exactly one parameter (handshape, location or movement), so the class set contains
minimal pairs by construction; every pair of classes that differs in exactly one parameter is
recorded, with its kind.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

from slrbench.errors import SlrbenchError

from .hands import HANDSHAPES

HANDSHAPE_NAMES: tuple[str, ...] = tuple(HANDSHAPES)
# Non-dominant "base" hands in dominant-on-base signs are simple, stable shapes (as in ASL).
BASE_HANDSHAPES: tuple[str, ...] = ("B", "5", "S", "C")
LOCATIONS: tuple[str, ...] = ("neutral", "chest", "stomach", "chin", "nose", "forehead",
                              "cheek", "ear", "shoulder", "side")
MOVEMENTS: tuple[str, ...] = ("tap", "forward", "down", "side", "arc", "circle", "zigzag",
                              "twist", "shake")
ORIENTATIONS: tuple[str, ...] = ("out", "in", "down", "up", "side")
SYMMETRIES: tuple[str, ...] = ("none", "symmetric", "alternating", "base")
PAIR_KINDS: tuple[str, ...] = ("handshape", "location", "movement")

# The parameters compared for minimal pairs; the two handshapes count as one parameter
# ("handshape"), because a symmetric two-handed sign changes both hands together.
PARAMETERS: tuple[str, ...] = ("handshape", "location", "movement", "orientation", "hands",
                               "symmetry", "repetitions")


@dataclass(frozen=True)
class ClassInfo:
    """One SynthSign class: its gloss, semantic cluster, family and phonological parameters."""

    index: int
    gloss: str
    cluster: str
    family: int
    handshape_dominant: str
    handshape_nondominant: str | None  # None for one-handed signs
    location: str
    movement: str
    orientation: str
    hands: int  # 1 or 2
    symmetry: str  # "none" (one-handed), "symmetric", "alternating", "base"
    repetitions: int  # 1-3

    def parameters(self) -> dict[str, Any]:
        return {
            "handshape": (self.handshape_dominant, self.handshape_nondominant),
            "location": self.location,
            "movement": self.movement,
            "orientation": self.orientation,
            "hands": self.hands,
            "symmetry": self.symmetry,
            "repetitions": self.repetitions,
        }

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def differing_parameters(a: ClassInfo, b: ClassInfo) -> list[str]:
    pa, pb = a.parameters(), b.parameters()
    return [k for k in PARAMETERS if pa[k] != pb[k]]


def find_minimal_pairs(classes: list[ClassInfo]) -> list[tuple[int, int, str]]:
    """Every pair (a < b) differing in exactly one parameter, with that parameter as its kind."""
    pairs = []
    for i in range(len(classes)):
        for j in range(i + 1, len(classes)):
            diff = differing_parameters(classes[i], classes[j])
            if len(diff) == 1:
                pairs.append((classes[i].index, classes[j].index, diff[0]))
    return pairs


# ------------------------------------------------------------------------------------------
# Class construction


def _random_sign(rng: np.random.Generator) -> dict[str, Any]:
    hands = 1 if rng.random() < 0.6 else 2
    dom = str(rng.choice(HANDSHAPE_NAMES))
    if hands == 1:
        symmetry, nondom = "none", None
    else:
        symmetry = str(rng.choice(SYMMETRIES[1:], p=[0.4, 0.25, 0.35]))
        nondom = str(rng.choice(BASE_HANDSHAPES)) if symmetry == "base" else dom
    return {
        "handshape_dominant": dom,
        "handshape_nondominant": nondom,
        "location": str(rng.choice(LOCATIONS)),
        "movement": str(rng.choice(MOVEMENTS)),
        "orientation": str(rng.choice(ORIENTATIONS)),
        "hands": hands,
        "symmetry": symmetry,
        "repetitions": int(rng.choice([1, 2, 3], p=[0.35, 0.4, 0.25])),
    }


def _variant(base: dict[str, Any], kind: str, rng: np.random.Generator) -> dict[str, Any]:
    v = dict(base)
    if kind == "handshape":
        choices = [h for h in HANDSHAPE_NAMES if h != base["handshape_dominant"]]
        v["handshape_dominant"] = str(rng.choice(choices))
        if base["symmetry"] in ("symmetric", "alternating"):
            v["handshape_nondominant"] = v["handshape_dominant"]
    elif kind == "location":
        v["location"] = str(rng.choice([x for x in LOCATIONS if x != base["location"]]))
    elif kind == "movement":
        v["movement"] = str(rng.choice([x for x in MOVEMENTS if x != base["movement"]]))
    else:  # pragma: no cover - internal misuse
        raise ValueError(kind)
    return v


def _as_probe(params: dict[str, Any]) -> ClassInfo:
    return ClassInfo(index=-1, gloss="", cluster="", family=-1, **params)


def _acceptable(candidate: dict[str, Any], existing: list[ClassInfo],
                family_members: list[ClassInfo]) -> bool:
    """No duplicate sign; no unrecorded-kind minimal pair (e.g. orientation-only) with
    anything; and no minimal pair with other families (visual similarity should come in
    families, so that gloss semantics can follow it)."""
    probe = _as_probe(candidate)
    for other in existing:
        diff = differing_parameters(probe, other)
        if not diff:
            return False
        in_family = any(other is m for m in family_members)
        if len(diff) == 1 and (diff[0] not in PAIR_KINDS or not in_family):
            return False
    return True


def build_signs(n_classes: int, family_sizes: tuple[int, ...],
                rng: np.random.Generator) -> list[tuple[int, dict[str, Any]]]:
    """(family id, parameters) for `n_classes` classes, families of the configured sizes.

    Variant kinds cycle through a shuffled sequence weighted towards handshape (the pairs that
    need hand detail), so every kind appears as soon as there are a few families."""
    kinds: list[str] = []
    out: list[tuple[int, dict[str, Any]]] = []
    infos: list[ClassInfo] = []
    family = 0
    while len(out) < n_classes:
        size = min(int(rng.choice(family_sizes)), n_classes - len(out))
        members: list[ClassInfo] = []
        for _ in range(200):
            base = _random_sign(rng)
            if _acceptable(base, infos, members):
                break
        else:  # pragma: no cover - only with absurd class counts
            raise SlrbenchError(f"SynthSign: cannot find {n_classes} distinct signs")
        members.append(_as_probe(base))
        out.append((family, base))
        infos.append(members[-1])
        attempts = 0
        while len(members) < size and attempts < 12:
            attempts += 1
            if not kinds:
                kinds = list(rng.permutation(["handshape", "handshape", "location", "movement"]))
            kind = kinds.pop()
            for _ in range(50):
                var = _variant(base, kind, rng)
                if _acceptable(var, infos, members):
                    break
            else:
                continue  # this kind is exhausted for this base; the next kind will be tried
            members.append(_as_probe(var))
            out.append((family, var))
            infos.append(members[-1])
        family += 1
    return out


# ------------------------------------------------------------------------------------------
# Glosses


@lru_cache(maxsize=1)
def gloss_clusters() -> dict[str, tuple[str, ...]]:
    """The curated clusters from `glosses.json` (WLASL v0.3 glosses; see its attribution)."""
    text = resources.files(__package__).joinpath("glosses.json").read_text(encoding="utf-8")
    doc = json.loads(text)
    return {k: tuple(v) for k, v in doc["clusters"].items()}


def gloss_attribution() -> str:
    text = resources.files(__package__).joinpath("glosses.json").read_text(encoding="utf-8")
    return str(json.loads(text)["attribution"])


def assign_glosses(family_ids: list[int], semantic_rate: float,
                   rng: np.random.Generator) -> list[tuple[str, str]]:
    """(gloss, cluster) per class. With probability `semantic_rate` a family takes all its
    glosses from one cluster (visually similar -> semantically related); otherwise each member
    comes from a different cluster."""
    clusters = gloss_clusters()
    pool = {c: list(rng.permutation(list(g))) for c, g in clusters.items()}
    total = sum(len(g) for g in pool.values())
    if len(family_ids) > total:
        raise SlrbenchError(f"SynthSign: n_classes={len(family_ids)} exceeds the {total} "
                            "curated glosses in glosses.json")
    out: list[tuple[str, str]] = []
    sizes: dict[int, int] = {}
    for f in family_ids:
        sizes[f] = sizes.get(f, 0) + 1
    for f in sorted(sizes):
        k = sizes[f]
        names = sorted(pool)
        semantic = rng.random() < semantic_rate
        fits = [c for c in names if len(pool[c]) >= k]
        if semantic and fits:
            c = str(rng.choice(fits))
            out.extend((str(pool[c].pop()), c) for _ in range(k))
            continue
        nonempty = [c for c in names if pool[c]]
        picks: np.ndarray | list[str]
        if len(nonempty) >= k:
            # Prefer the fullest clusters so semantic families later still find room.
            weights = np.array([len(pool[c]) for c in nonempty], float)
            picks = rng.choice(nonempty, size=k, replace=False, p=weights / weights.sum())
        else:  # vocabulary nearly exhausted: reuse clusters
            picks = [nonempty[i % len(nonempty)] for i in range(k)]
        for c in picks:
            out.append((str(pool[str(c)].pop()), str(c)))
    return out


def build_classes(n_classes: int, family_sizes: tuple[int, ...], semantic_rate: float,
                  rng: np.random.Generator) -> tuple[list[ClassInfo], list[tuple[int, int, str]]]:
    signs = build_signs(n_classes, family_sizes, rng)
    glosses = assign_glosses([f for f, _ in signs], semantic_rate, rng)
    classes = [ClassInfo(index=i, gloss=g, cluster=c, family=f, **params)
               for i, ((f, params), (g, c)) in enumerate(zip(signs, glosses))]
    return classes, find_minimal_pairs(classes)
