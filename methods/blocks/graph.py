"""Spatial-labelling adjacency of the SAM-SLR graphs
(docs/methods/samslr-pipeline.md#bones-and-graph).

Follows ``jackyjsy/CVPR21Chal-SLR`` @ de6c53a, ``SL-GCN/graph/sign_27.py`` with the ST-GCN
``tools.get_spatial_graph`` convention: a (3, V, V) stack of

* identity (self links);
* inward: 1 at [child, parent] for every (parent, child) pair, each column divided by its sum;
* outward: 1 at [parent, child], column-normalised the same way.

Columns with zero sum stay zero. With the models' joint mixing out_w = sum_v x_v * A[v, w], the
inward matrix gathers children into their parent and the outward one the reverse.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from slrbench.datasets.layouts import KeypointLayout, get_layout
from slrbench.errors import SlrbenchError


def _edge_matrix(num_nodes: int, links: Sequence[tuple[int, int]]) -> np.ndarray:
    a = np.zeros((num_nodes, num_nodes), dtype=np.float64)
    for row, col in links:
        a[row, col] = 1.0
    return a


def normalize_columns(a: np.ndarray) -> np.ndarray:
    """Divide each column by its sum; all-zero columns stay zero."""
    col = a.sum(axis=0)
    inv = np.zeros_like(col)
    np.divide(1.0, col, out=inv, where=col > 0)
    return a * inv[None, :]


def spatial_adjacency(num_nodes: int, edges: Sequence[tuple[int, int]]) -> np.ndarray:
    """float32 (3, V, V): identity, column-normalised inward, column-normalised outward."""
    for p, c in edges:
        if not (0 <= p < num_nodes and 0 <= c < num_nodes) or p == c:
            raise SlrbenchError(
                f"graph edge: found ({p}, {c}); expected two distinct nodes in 0..{num_nodes - 1}"
            )
    identity = np.eye(num_nodes)
    inward = normalize_columns(_edge_matrix(num_nodes, [(c, p) for p, c in edges]))
    outward = normalize_columns(_edge_matrix(num_nodes, [(p, c) for p, c in edges]))
    return np.stack([identity, inward, outward]).astype(np.float32)


def layout_adjacency(layout: KeypointLayout | str) -> np.ndarray:
    """`spatial_adjacency` of a keypoint layout."""
    lay = get_layout(layout)
    return spatial_adjacency(lay.num_nodes, lay.edges)
