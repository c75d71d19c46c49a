"""Registry of the datasets slrbench knows: SynthSign (built in, generated on demand) and the
real isolated-SLR benchmarks (facts from docs/datasets/README.md; no videos or keypoints are
shipped, only official metadata: slrbench.datasets.official).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from slrbench.datasets.base import Dataset
from slrbench.errors import SlrbenchError
from slrbench.paths import cache_dir
from slrbench.store.verify import RegistryFacts


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    title: str
    language: str
    num_classes: int
    split_sizes: dict[str, int | None]  # official counts; None where upstream has no such split
    signers: str
    signer_independent: bool | None
    modalities: tuple[str, ...]
    distributed_as: str
    # where checkpoints and fusion weights are chosen (docs/evaluation.md#splits-and-selection)
    selection: str
    license: str
    synthetic: bool = False
    synthsign_preset: str | None = None
    notes: str = ""
    # "module:function" in slrbench.datasets that reads a prepared copy (its folder in, a
    # Dataset out); None: no reader yet.
    reader: str | None = None
    # Training signers held out as val where the dataset has no val split (prepare).
    val_signers: tuple[str, ...] = ()


def _wlasl(k: int, sizes: tuple[int, int, int]) -> DatasetEntry:
    train, val, test = sizes
    return DatasetEntry(
        name=f"wlasl{k}",
        title=f"WLASL{k} (first {k} glosses of WLASL v0.3)",
        language="ASL",
        num_classes=k,
        split_sizes={"train": train, "val": val, "test": test},
        signers="119 overall; test signers mostly also in train",
        signer_independent=False,
        modalities=("rgb", "pose"),
        distributed_as="list of web-video URLs (many dead)",
        selection=f"official val ({val})",
        license="C-UDA-1.0 (research use)",
        notes="ids are 5-character zero-padded strings; WLASL2000 test covers 1,999 classes"
        if k == 2000
        else "ids are 5-character zero-padded strings",
    )


# Validation signers per subset, counted in MSASL_val.json (test has 20 in every subset).
_MSASL_VAL_SIGNERS = {100: 33, 200: 33, 500: 36, 1000: 37}


def _msasl(k: int, val: int, test: int) -> DatasetEntry:
    return DatasetEntry(
        name=f"msasl{k}",
        title=f"MS-ASL{k} (labels < {k})",
        language="ASL",
        num_classes=k,
        split_sizes={"train": 16054 if k == 1000 else None, "val": val, "test": test},
        signers=f"val {_MSASL_VAL_SIGNERS[k]} / test 20, disjoint",
        signer_independent=True,
        modalities=("rgb", "pose"),
        distributed_as="YouTube URLs + time ranges (many dead); train metadata from the release",
        selection=f"official val ({val})",
        license="C-UDA-0.1 (research use)",
        notes="no id field upstream: slrbench hashes (url, start_time, end_time)",
    )


REGISTRY: dict[str, DatasetEntry] = {
    e.name: e
    for e in [
        DatasetEntry(
            name="synthsign",
            title="SynthSign (procedural, built in), default size",
            language="synthetic (WLASL glosses)",
            num_classes=64,
            split_sizes={"train": None, "val": None, "test": None},
            signers="signer-independent synthetic signers",
            signer_independent=True,
            modalities=("pose", "rgb", "sensor"),
            distributed_as="generated on demand from a seed, cached",
            selection="val (held-out signers)",
            license="generated; glosses from WLASL v0.3 (C-UDA-1.0)",
            synthetic=True,
            synthsign_preset="default",
        ),
        DatasetEntry(
            name="synthsign-tiny",
            title="SynthSign (procedural, built in), CI size",
            language="synthetic (WLASL glosses)",
            num_classes=20,
            split_sizes={"train": None, "val": None, "test": None},
            signers="signer-independent synthetic signers",
            signer_independent=True,
            modalities=("pose", "rgb", "sensor"),
            distributed_as="generated on demand from a seed, cached",
            selection="val (held-out signers)",
            license="generated; glosses from WLASL v0.3 (C-UDA-1.0)",
            synthetic=True,
            synthsign_preset="tiny",
        ),
        DatasetEntry(
            name="autsl",
            title="AUTSL (CVPR 2021 ChaLearn LAP)",
            language="Turkish SL",
            num_classes=226,
            split_sizes={"train": 28142, "val": 4418, "test": 3742},
            signers="43 (31 / 6 / 6)",
            signer_independent=True,
            modalities=("rgb", "depth", "pose"),
            distributed_as="RGB + depth video, 512x512",
            selection="official validation (4,418)",
            license="AUTSL / ChaLearn research terms",
            notes="ids signer<X>_sample<Y>; strip _color.mp4 suffixes before joining",
        ),
        _wlasl(100, (1442, 338, 258)),
        _wlasl(300, (3549, 900, 668)),
        _wlasl(1000, (8974, 2318, 1876)),
        _wlasl(2000, (14289, 3916, 2878)),
        _msasl(100, 1190, 757),
        _msasl(200, 2041, 1359),
        _msasl(500, 3702, 2720),
        _msasl(1000, 5287, 4172),
        DatasetEntry(
            name="slr500",
            title="SLR500 (CSL isolated, USTC)",
            language="Chinese SL",
            num_classes=500,
            split_sizes={"train": 87445, "val": None, "test": 37500},
            signers="50 (35 / - / 15)",
            signer_independent=True,
            modalities=("rgb", "pose"),
            distributed_as="Kinect RGB video",
            selection="held-out training signers P31-P35 (slrbench design)",
            val_signers=("P31", "P32", "P33", "P34", "P35"),
            license="USTC research agreement",
            notes="class index = native label id, not gloss_label.txt line order",
        ),
        DatasetEntry(
            name="nmfs-csl",
            title="NMFs-CSL (non-manual-feature-aware CSL)",
            language="Chinese SL",
            num_classes=1067,
            split_sizes={"train": 25608, "val": None, "test": 6402},
            signers="10 (unverified)",
            signer_independent=None,
            modalities=("rgb", "pose"),
            distributed_as="RGB frames",
            selection="10 % of train, stratified by class, by signer where signer ids are "
            "available (slrbench design)",
            license="USTC research agreement",
            notes="no public class list or split file; user-supplied; split sizes from the "
            "dataset paper (unverified)",
        ),
        DatasetEntry(
            name="vsl",
            title="VSL (Vietnamese SL with wrist IMU)",
            language="Vietnamese SL",
            num_classes=50,
            split_sizes={"train": 5714, "val": None, "test": 2215},
            signers="11 ids (7 / - / 4)",
            signer_independent=True,
            modalities=("rgb", "sensor"),
            distributed_as="video + wrist IMU arrays",
            selection="held-out training signer N12 (slrbench design)",
            license="not stated; research use",
            reader="vsl:load_vsl",
        ),
    ]
}


def get_entry(name: str) -> DatasetEntry:
    try:
        return REGISTRY[name]
    except KeyError:
        raise SlrbenchError(
            f"--dataset: unknown dataset '{name}'; expected one of {', '.join(REGISTRY)}"
        ) from None


def prepared_dir(name: str) -> Path:
    return cache_dir() / "prepared" / name


def local_status(name: str) -> str:
    """What is available on this machine, in words: for a prepared copy, n_found / n_official
    per split (docs/datasets/prepare.md)."""
    entry = get_entry(name)
    if entry.synthetic:
        return "built in (generated on first use, then cached)"
    folder = prepared_dir(name)
    if not folder.is_dir():
        return "not prepared"
    if not (folder / "meta.json").is_file():
        return "prepared (a copy in place)"
    from slrbench.datasets.prepared import read_meta

    try:
        counts = read_meta(folder)["counts"]
    except SlrbenchError as error:
        return f"prepared copy unreadable: {error}"
    parts = [f"{split} {c['n_found']}" + (f"/{c['n_official']}" if c["n_official"] else "")
             for split, c in counts.items() if c["n_found"]]
    return "prepared: " + ", ".join(parts)


def load_dataset(name: str, seed: int = 0) -> Dataset:
    """Load a dataset for training. SynthSign is generated (or read from its cache); real
    datasets need a prepared local copy, which slrbench never downloads."""
    entry = get_entry(name)
    if entry.synthetic:
        from slrbench.datasets.synthsign import load_synthsign

        dataset = load_synthsign(preset=entry.synthsign_preset or "tiny", seed=seed)
        # Records key on the registry name, so each SynthSign preset is its own dataset.
        dataset.spec = replace(dataset.spec, name=entry.name)
        return dataset
    if (prepared_dir(name) / "meta.json").is_file():
        from slrbench.datasets.prepared import PreparedDataset

        return PreparedDataset(prepared_dir(name))
    if entry.reader is not None and prepared_dir(name).is_dir():
        module, function = entry.reader.split(":")
        reader = getattr(importlib.import_module(f"slrbench.datasets.{module}"), function)
        loaded: Dataset = reader(prepared_dir(name))
        return loaded
    raise SlrbenchError(
        f"--dataset {name}: no prepared local copy at {prepared_dir(name)}; expected one "
        f"written by `slrbench prepare --dataset {name} --from PATH` (slrbench ships no real "
        "dataset content, docs/datasets/prepare.md)"
    )


@lru_cache(maxsize=32)
def registry_facts(name: str) -> RegistryFacts | None:
    """What records of `name` must agree with (slrbench.store.verify); None for a dataset the
    registry does not know (a user's own subset). Where official ids are shipped
    (`slrbench.datasets.official`: SynthSign, AUTSL) every id and the class list are checked;
    elsewhere the number of classes and the split sizes."""
    from slrbench.datasets.official import official_split

    entry = REGISTRY.get(name)
    if entry is None:
        return None
    tables = {split: official_split(name, split) for split in entry.split_sizes}
    known = {split: table for split, table in tables.items() if table is not None}
    first = next(iter(known.values()), None)
    return RegistryFacts(dataset=name, num_classes=entry.num_classes,
                         vocab_sha256=first.vocab_sha256 if first else None,
                         split_ids={s: frozenset(t.ids) for s, t in known.items()} or None,
                         split_sizes=dict(entry.split_sizes))
