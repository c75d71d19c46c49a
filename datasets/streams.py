"""Skeleton streams of the SAM-SLR lineage: joint (J), bone (B), joint motion (JM), bone motion
(BM).

Definitions follow SAM-SLR's offline scripts (``jackyjsy/CVPR21Chal-SLR`` @ de6c53a,
``SL-GCN/data_gen/gen_bone_data.py`` and ``gen_motion_data.py``;
docs/methods/samslr-pipeline.md#arrays-on-disk):

* bone: child := joint[child] - joint[parent] on **all** channels (the score channel becomes a
  score difference); nodes that are nobody's child (the root) keep their absolute values. The
  result is written into a separate buffer, so every bone is a true bone (unlike DSTA-SLR's
  in-place variant, docs/methods/dsta.md#input-pipeline).
* motion: out[t] = x[t+1] - x[t] on all channels, last frame zero.

Arrays are numpy, channel-last: (..., T, V, C).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from slrbench.datasets.layouts import KeypointLayout, get_layout
from slrbench.errors import SlrbenchError

STREAMS: tuple[str, ...] = ("j", "b", "jm", "bm")
STREAM_NAMES: dict[str, str] = {
    "j": "joint",
    "b": "bone",
    "jm": "joint motion",
    "bm": "bone motion",
}
_VECTOR_STREAMS = frozenset({"b", "jm", "bm"})


def _as_float(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    return x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float32)


def bones(x: np.ndarray, edges: Sequence[tuple[int, int]]) -> np.ndarray:
    """Bone vectors of ``x`` (..., V, C) for (parent, child) ``edges``; a new array.

    Every child reads the *joint* arrays (never an already-converted bone), so the order of the
    edges does not matter.
    """
    x = _as_float(x)
    if x.ndim < 2:
        raise SlrbenchError(f"bones: input has shape {x.shape}; expected (..., V, C)")
    out = x.copy()
    if len(edges) == 0:
        return out
    parents = np.fromiter((p for p, _ in edges), dtype=np.intp)
    children = np.fromiter((c for _, c in edges), dtype=np.intp)
    v = x.shape[-2]
    if parents.max() >= v or children.max() >= v or min(parents.min(), children.min()) < 0:
        raise SlrbenchError(f"bones: an edge index is out of range; expected 0..{v - 1}")
    if len(np.unique(children)) != len(children):
        raise SlrbenchError("bones: edges give some node two parents; expected a forest")
    out[..., children, :] = x[..., children, :] - x[..., parents, :]
    return out


def bones_inplace(x: np.ndarray, edges: Sequence[tuple[int, int]]) -> np.ndarray:
    """DSTA-SLR's bone stream (docs/methods/dsta.md#input-pipeline): for each (parent, child) in
    ``edges`` **order**, child := child - parent on the array being converted; a new array.

    Reproduces an upstream bug on purpose: a child whose parent was already converted gets a
    difference of differences (on samslr_27: elbow - (shoulder - nose), ...). Use `bones` for
    true bone vectors.
    """
    x = _as_float(x)
    if x.ndim < 2:
        raise SlrbenchError(f"bones_inplace: input has shape {x.shape}; expected (..., V, C)")
    v = x.shape[-2]
    out = x.copy()
    for parent, child in edges:
        if not (0 <= parent < v and 0 <= child < v):
            raise SlrbenchError(
                f"bones_inplace: edge ({parent}, {child}) is out of range; expected 0..{v - 1}"
            )
        out[..., child, :] -= out[..., parent, :]
    return out


def motion(x: np.ndarray) -> np.ndarray:
    """Forward temporal difference of ``x`` (..., T, V, C): out[t] = x[t+1] - x[t], last 0."""
    x = _as_float(x)
    if x.ndim < 3:
        raise SlrbenchError(f"motion: input has shape {x.shape}; expected (..., T, V, C)")
    out = np.zeros_like(x)
    out[..., :-1, :, :] = x[..., 1:, :, :] - x[..., :-1, :, :]
    return out


def is_vector_stream(stream: str) -> bool:
    """True for streams made of differences (b, jm, bm): flips negate x instead of reflecting."""
    return validate_streams([stream])[0] in _VECTOR_STREAMS


def validate_streams(names: Iterable[str] | str) -> tuple[str, ...]:
    """Check stream names; return them de-duplicated in the given order.

    A single string is one stream name. An empty selection is an error.
    """
    items = [names] if isinstance(names, str) else list(names)
    if not items:
        raise SlrbenchError(f"streams: found none; expected one or more of {', '.join(STREAMS)}")
    for s in items:
        if s not in STREAMS:
            raise SlrbenchError(
                f"streams: unknown stream '{s}'; expected one of {', '.join(STREAMS)} "
                f"({', '.join(f'{k}={v}' for k, v in STREAM_NAMES.items())})"
            )
    return tuple(dict.fromkeys(items))


def derive_stream(joints: np.ndarray, stream: str, layout: KeypointLayout | str) -> np.ndarray:
    """Stream ``stream`` of joint array ``joints`` (..., T, V, C) in ``layout``; a new array."""
    stream = validate_streams([stream])[0]
    lay = get_layout(layout)
    joints = _as_float(joints)
    if joints.ndim < 3 or joints.shape[-2] != lay.num_nodes:
        raise SlrbenchError(
            f"joints: shape {joints.shape} does not match layout '{lay.name}'; "
            f"expected (..., T, {lay.num_nodes}, C)"
        )
    if stream == "j":
        return joints.copy()
    if stream == "jm":
        return motion(joints)
    b = bones(joints, lay.edges)
    return b if stream == "b" else motion(b)
