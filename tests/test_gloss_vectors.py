"""Gloss word vectors (docs/formats/word-vectors.md): GloVe-style tokens, the shipped table's
coverage of the vocabularies slrbench knows, missing glosses, fastText .vec files."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from slrbench.datasets.gloss_vectors import (
    SHIPPED,
    class_vectors,
    embed_glosses,
    gloss_similarity,
    gloss_tokens,
    read_bin,
    read_vec,
    shipped_vectors,
)
from slrbench.datasets.official import _autsl_classes, _lines
from slrbench.errors import SlrbenchError


def test_tokens_follow_glove() -> None:
    assert gloss_tokens("don't want") == ["do", "n't", "want"]
    assert gloss_tokens("Thank_You") == ["thank", "you"]
    assert gloss_tokens("enjoy your meal") == ["enjoy", "your", "meal"]
    assert gloss_tokens("t-shirt") == ["t", "shirt"]
    assert gloss_tokens("mother's") == ["mother", "'s"]


def test_multi_word_glosses_average_their_tokens() -> None:
    table = {"thank": np.array([1.0, 0.0]), "you": np.array([0.0, 3.0])}
    vectors, missing = embed_glosses(["thank you", "zzz", "you"], table.get, 2)
    np.testing.assert_allclose(vectors, [[0.5, 1.5], [0.0, 0.0], [0.0, 3.0]])
    assert missing == ("zzz",)
    similarity = gloss_similarity(vectors)
    assert similarity[1].tolist() == [0.0, 0.0, 0.0]  # no vector: similar to nothing
    assert similarity[0, 2] == pytest.approx(1.5 / np.hypot(0.5, 1.5))


def test_the_shipped_table_covers_the_known_vocabularies() -> None:
    table = shipped_vectors()
    assert table.vectors.shape == (len(table.glosses), 50)
    counts = {}
    for name, classes in (("wlasl", _lines("wlasl", "classes.txt")),
                          ("msasl", _lines("msasl", "classes.txt")),
                          ("autsl", _autsl_classes())):
        _, missing = table.for_classes(classes)
        counts[name] = (len(classes) - len(missing), tuple(sorted(missing)))
    assert counts == {"wlasl": (1999, ("fingerspell",)),
                      "msasl": (998, ("fingerspell", "hoddog")), "autsl": (226, ())}
    vectors, _ = table.for_classes(["mother", "father", "computer"])
    similarity = gloss_similarity(vectors)
    assert similarity[0, 1] > 0.8 > similarity[0, 2]  # related glosses are close


def test_the_shipped_table_is_the_documented_file() -> None:
    readme = (SHIPPED.parents[1] / "README.md").read_text()
    digest = hashlib.sha256(SHIPPED.read_bytes()).hexdigest()
    assert f"{digest}  gloss_vectors/{SHIPPED.name}" in readme


def test_fasttext_vec_files(tmp_path: Path) -> None:
    path = tmp_path / "words.vec"
    path.write_text("3 2\nthank 1 0\nyou 0 3\nmother 2 2\n", encoding="utf-8")
    table = read_vec(path, ["thank you", "mother", "unknown"])
    np.testing.assert_allclose(table.vectors, [[0.5, 1.5], [2.0, 2.0], [0.0, 0.0]])
    assert table.missing == ("unknown",)
    path.write_text("thank 1 0\n", encoding="utf-8")
    with pytest.raises(SlrbenchError, match=r"words\.vec: first line 'thank 1 0'; expected "
                                            "'<count> <dim>'"):
        read_vec(path, ["thank"])
    path.write_text("1 3\nthank 1 0\n", encoding="utf-8")
    with pytest.raises(SlrbenchError, match="line 2 has 2 values; expected 3"):
        read_vec(path, ["thank"])
    with pytest.raises(SlrbenchError, match="cannot read"):
        read_vec(tmp_path / "absent.vec", ["thank"])


def test_class_vectors_by_source(tmp_path: Path) -> None:
    shipped = class_vectors("shipped", ["mother", "zzzz"])
    assert shipped.vectors.shape == (2, 50) and shipped.missing == ("zzzz",)
    np.testing.assert_array_equal(shipped.vectors[0], shipped_vectors().for_classes(
        ["mother"])[0][0])
    path = tmp_path / "words.vec"
    path.write_text("1 2\nmother 2 2\n", encoding="utf-8")
    assert class_vectors(str(path), ["mother"]).vectors.tolist() == [[2.0, 2.0]]
    path.write_text("1 2\nmother 3 1\n", encoding="utf-8")  # replaced: read again
    os.utime(path, ns=(1, 10**9 + path.stat().st_mtime_ns))
    assert class_vectors(str(path), ["mother"]).vectors.tolist() == [[3.0, 1.0]]
    with pytest.raises(SlrbenchError, match=r"words\.txt: suffix '\.txt'; expected a fastText "
                                            r"\.vec or \.bin file"):
        (tmp_path / "words.txt").write_text("1 2\n")
        class_vectors(str(tmp_path / "words.txt"), ["mother"])
    with pytest.raises(SlrbenchError, match=r"absent\.vec: cannot read"):
        class_vectors(str(tmp_path / "absent.vec"), ["mother"])


def test_fasttext_bin_files_give_subword_vectors(tmp_path: Path) -> None:
    fasttext = pytest.importorskip("fasttext")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(" ".join(["thank you mother father birthday"] * 300), encoding="utf-8")
    model = fasttext.train_unsupervised(str(corpus), dim=4, epoch=1, minCount=1, thread=1,
                                        bucket=1000, verbose=0)
    path = tmp_path / "words.bin"
    model.save_model(str(path))
    table = read_bin(path, ["thank you", "mothers", "?!"])
    expected = (model.get_word_vector("thank") + model.get_word_vector("you")) / 2
    np.testing.assert_allclose(table.vectors[0], expected, rtol=1e-6)
    # Out of vocabulary but sharing n-grams with "mother": fastText's subword vector.
    np.testing.assert_allclose(table.vectors[1], model.get_word_vector("mothers"), rtol=1e-6)
    assert table.vectors[1].any() and table.missing == ("?!",)  # no token at all
    (tmp_path / "broken.bin").write_bytes(b"not a model")
    with pytest.raises(SlrbenchError, match=r"broken\.bin: not a fastText model"):
        read_bin(tmp_path / "broken.bin", ["thank"])


def test_bin_files_without_the_fasttext_package(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "fasttext", None)  # import fails as if not installed
    with pytest.raises(SlrbenchError, match=r"words\.bin: reading fastText \.bin files needs "
                                            r"the optional `fasttext` package"):
        read_vec(tmp_path / "words.bin", ["thank"])
