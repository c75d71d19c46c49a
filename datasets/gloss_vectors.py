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
        return read_bin(path, classes)
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


def read_bin(path: Path, classes: Sequence[str]) -> GlossVectors:
    """Vectors of `classes` from a fastText binary model (`.bin`, the paper's
    crawl-300d-2M-subword), through the optional `fasttext` package. A token outside the
    model's vocabulary gets fastText's subword vector (the sum of its character n-grams), as
    the paper's lookups did; only a token with no known n-gram counts as unknown."""
    try:
        import fasttext  # the `fasttext` extra: a compiled reader of the binary format
    except ImportError:
        raise SlrbenchError(f"--word-vectors {path}: reading fastText .bin files needs the "
                            "optional `fasttext` package (pip install 'slrbench[fasttext]'); "
                            "expected it installed, or a .vec text file "
                            "(docs/formats/word-vectors.md)") from None
    if not path.is_file():
        raise SlrbenchError(f"--word-vectors {path}: no such file; expected a fastText .bin "
                            "model")
    try:
        model = fasttext.load_model(str(path))
    except ValueError as exc:  # fastText's own message for a file that is not a model
        raise SlrbenchError(f"--word-vectors {path}: not a fastText model ({exc}); expected "
                            "a .bin file written by fastText") from None
    dim = int(model.get_dimension())

    def lookup(token: str) -> np.ndarray | None:
        vector = np.asarray(model.get_word_vector(token), dtype=np.float32)
        return vector if vector.any() else None  # all-zero: no n-gram of it is known

    vectors, missing = embed_glosses(classes, lookup, dim)
    return GlossVectors(tuple(classes), vectors, f"fastText {path.name}", missing)


SHIPPED_SOURCE = "shipped"


def class_vectors(source: str, classes: Sequence[str]) -> GlossVectors:
    """The gloss vectors of `classes` in order from `source`: "shipped" (GloVe 6B 50-d) or the
    path of a fastText `.vec` / `.bin` file. Read once per process for a given file state."""
    if source == SHIPPED_SOURCE:
        table = shipped_vectors()
        vectors, missing = table.for_classes(classes)
        return GlossVectors(tuple(classes), vectors, table.source, missing)
    path = Path(source).expanduser()
    try:
        stat = path.stat()
    except OSError as exc:
        raise SlrbenchError(f"--word-vectors {path}: cannot read ({exc.strerror}); expected a "
                            "fastText .vec or .bin file") from None
    if path.suffix not in (".vec", ".bin"):
        raise SlrbenchError(f"--word-vectors {path}: suffix '{path.suffix}'; expected a "
                            "fastText .vec or .bin file")
    return _read_cached(str(path.resolve()), stat.st_size, stat.st_mtime_ns, tuple(classes))


@lru_cache(maxsize=4)
def _read_cached(path: str, size: int, mtime_ns: int, classes: tuple[str, ...]) -> GlossVectors:
    # size and mtime are part of the key: a file replaced in place is read again.
    return read_vec(Path(path), classes)


def gloss_similarity(vectors: np.ndarray) -> np.ndarray:
    """(K, K) cosine similarity of the rows of `vectors`; a zero row (a gloss without a
    vector) has similarity 0 to every class."""
    vectors = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
    return (unit @ unit.T).astype(np.float32)
