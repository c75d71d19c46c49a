"""Gloss word vectors for language-aware methods (docs/formats/word-vectors.md): one vector per
class gloss, from the table shipped with slrbench (GloVe 6B 50-d, built offline) or from a
fastText file the user supplies, and the class-by-class cosine similarity NLA-SLR's
language-aware label smoothing is built from.

Multi-word and compound glosses ("enjoy your meal", "thank_you", "don't want") are split into
tokens the way GloVe tokenised its corpus (spaces, underscores, hyphens and slashes separate
tokens; "n't" and "'s" are tokens of their own) and the token vectors are averaged. A gloss with
no known token has no vector: it is listed as missing and its vector is zero, so its cosine
similarity to every other class is 0 (language-aware smoothing then spreads its ε uniformly).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from slrbench.errors import SlrbenchError

SHIPPED = Path(__file__).resolve().parent / "metadata" / "gloss_vectors" / "glove6b50d.npz"
_SEPARATORS = re.compile(r"[\s_\-/]+")
_EDGE_PUNCTUATION = "()[]{}\"“”.,;:!?"


def gloss_tokens(gloss: str) -> list[str]:
    """Lower-case GloVe-style tokens of one gloss."""
    tokens: list[str] = []
    for word in _SEPARATORS.split(gloss.lower().replace("’", "'")):
        word = word.strip(_EDGE_PUNCTUATION)
        if word.endswith("n't") and len(word) > 3:  # GloVe: "don't" -> "do" "n't"
            tokens += [word[:-3], "n't"]
        elif word.endswith("'s") and len(word) > 2:
            tokens += [word[:-2], "'s"]
        elif word:
            tokens.append(word)
    return tokens


def embed_glosses(glosses: Sequence[str], lookup: Callable[[str], np.ndarray | None],
                  dim: int) -> tuple[np.ndarray, tuple[str, ...]]:
    """(K, dim) float32 mean token vectors, and the glosses none of whose tokens is known."""
    vectors = np.zeros((len(glosses), dim), dtype=np.float32)
    missing = []
    for i, gloss in enumerate(glosses):
        found = [v for v in (lookup(t) for t in gloss_tokens(gloss)) if v is not None]
        if found:
            vectors[i] = np.mean(np.stack(found), axis=0)
        else:
            missing.append(gloss)
    return vectors, tuple(missing)


@dataclass(frozen=True)
class GlossVectors:
    """A gloss -> vector table (glosses as the class lists spell them)."""

    glosses: tuple[str, ...]
    vectors: np.ndarray  # (N, D)
    source: str
    missing: tuple[str, ...] = ()  # glosses of the table without a vector (zero rows)

    def for_classes(self, classes: Sequence[str]) -> tuple[np.ndarray, tuple[str, ...]]:
        """(K, D) float32 vectors of `classes` in order, and the classes without one."""
        index = {g: i for i, g in enumerate(self.glosses)}
        out = np.zeros((len(classes), self.vectors.shape[1]), dtype=np.float32)
        lacking = []
        for k, gloss in enumerate(classes):
            row = index.get(gloss)
            if row is None or gloss in self.missing:
                lacking.append(gloss)
            else:
                out[k] = self.vectors[row]
        return out, tuple(lacking)


@lru_cache(maxsize=1)
def shipped_vectors() -> GlossVectors:
    """The table shipped with slrbench: GloVe 6B 50-d vectors of every gloss of the WLASL,
    MS-ASL, AUTSL (English) and SynthSign class lists."""
    with np.load(SHIPPED, allow_pickle=False) as data:
        return GlossVectors(tuple(str(g) for g in data["glosses"]),
                            data["vectors"].astype(np.float32), str(data["source"]),
                            tuple(str(g) for g in data["missing"]))


def read_vec(path: Path, classes: Sequence[str]) -> GlossVectors:
    """Vectors of `classes` from a fastText text file (`.vec`: a "count dim" header, then one
    "word v1 ... vD" line per word), read once, keeping only the tokens the glosses need."""
    if path.suffix == ".bin":
        raise SlrbenchError(f"--word-vectors {path}: fastText .bin files need the `fasttext` "
                            "package; expected a .vec text file (fastText's own export, "
                            "docs/formats/word-vectors.md)")
    wanted = {t for gloss in classes for t in gloss_tokens(gloss)}
    table: dict[str, np.ndarray] = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            header = handle.readline().split()
            if len(header) != 2 or not all(h.isdigit() for h in header):
                raise SlrbenchError(f"--word-vectors {path}: first line {' '.join(header)!r}; "
                                    "expected '<count> <dim>' (fastText .vec)")
            dim = int(header[1])
            for number, line in enumerate(handle, start=2):
                word, _, rest = line.rstrip("\n").partition(" ")
                if word not in wanted or word in table:
                    continue
                values = np.array(rest.split(), dtype=np.float32)
                if values.shape != (dim,):
                    raise SlrbenchError(f"--word-vectors {path}: line {number} has "
                                        f"{values.size} values; expected {dim}")
                table[word] = values
    except OSError as exc:
        raise SlrbenchError(f"--word-vectors {path}: cannot read ({exc.strerror})") from None
    vectors, missing = embed_glosses(classes, table.get, dim)
    return GlossVectors(tuple(classes), vectors, f"fastText {path.name}", missing)


def gloss_similarity(vectors: np.ndarray) -> np.ndarray:
    """(K, K) cosine similarity of the rows of `vectors`; a zero row (a gloss without a
    vector) has similarity 0 to every class."""
    vectors = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
    return (unit @ unit.T).astype(np.float32)
