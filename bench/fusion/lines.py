"""Top-1 hit counts along coordinate lines of weight space (for bench/fusion/subset_search.py).

A line keeps every stream's weight but one and varies that one, t, over a grid. Every fused score
is then linear in t, so the true class y of a sample beats a candidate c exactly where
d_c + t·e_c > 0, with d_c the other streams' weighted margin X_y − X_c and e_c the varied
stream's margin. A sample is therefore a hit on one open interval of t (the intersection over its
candidates): one product per line gives the interval of every sample, and the hit count at all
grid values follows from the interval ends, where scoring grid point by grid point would cost one
product each. Ranks ignore the weights' scale, so the unnormalised sum is used.

The margins are the engine's candidate columns (`HitEngine.top1_margins`): every rival of a sample
with few rivals, the narrow candidates (each stream's top rivals) of one with many. Beating the
narrow candidates is necessary for a hit, not sufficient, so every count is an upper bound of the
exact hit count: a line whose best count does not exceed a point's exact hits cannot improve on
it. The rivals left out almost never decide a sample (on benchmarks/fusion_bench.py's
WLASL2000-shaped logits the counts matched the exact ones on every line checked), so the best grid
value is a good proposal; callers re-score it with the engine before taking it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from slrbench.fusion.engine import HitEngine, chunks

# (lines x columns) elements per temporary: ~16 MB per float32 buffer.
_BLOCK = 1 << 22


@dataclass(frozen=True)
class _Side:
    """The columns of one sign of e for one varied stream, grouped by sample."""

    margins: np.ndarray  # (S, P) with the varied stream's row zeroed: base @ margins = d
    inverse: np.ndarray  # (P,) −1 / e: t must exceed (e > 0) or stay below (e < 0) d · inverse
    starts: np.ndarray  # first column of each sample that has columns of this sign
    samples: np.ndarray  # those samples


def _side(margins: np.ndarray, segment: np.ndarray, stream: int, keep: np.ndarray) -> _Side:
    chosen = np.ascontiguousarray(margins[:, keep])
    chosen[stream] = 0.0
    e = margins[stream, keep]
    inverse = np.divide(-1.0, e, out=np.zeros_like(e), where=e != 0).astype(np.float32)
    return _Side(chosen, inverse, *_segment_starts(segment[keep]))


class LineCounter:
    """Upper bounds of top-1 hit counts on a grid of one stream's weight, many lines at once."""

    def __init__(self, engine: HitEngine, grid: np.ndarray) -> None:
        self.grid = np.unique(np.asarray(grid, dtype=np.float64))
        self.n_streams = engine.n_streams
        self._margins, self._segment, self.always = engine.top1_margins()
        self.n_samples = int(self._segment[-1]) + 1 if self._segment.size else 0
        self._sides: dict[int, tuple[_Side, _Side, _Side]] = {}

    def _split(self, stream: int) -> tuple[_Side, _Side, _Side]:
        """Columns with e > 0 (lower ends), e < 0 (upper ends) and e = 0 (t-independent)."""
        if stream not in self._sides:
            e = self._margins[stream]
            lower, upper, flat = (_side(self._margins, self._segment, stream, keep)
                                  for keep in (e > 0, e < 0, e == 0))
            self._sides[stream] = (lower, upper, flat)
        return self._sides[stream]

    def counts(self, base: np.ndarray, streams: np.ndarray) -> np.ndarray:
        """(L, G) upper bounds of the top-1 hits of `base[l]` with weight `grid[g]` on stream
        `streams[l]`; −1 where that weight vector is all zero."""
        base = np.asarray(base, dtype=np.float64)
        streams = np.asarray(streams, dtype=np.int64)
        out = np.empty((base.shape[0], self.grid.size), dtype=np.int64)
        for stream in np.unique(streams):
            lines = np.flatnonzero(streams == stream)
            rest = base[lines].copy()
            rest[:, stream] = 0.0
            out[lines] = self._counts_one(rest.astype(np.float32), int(stream))
            dead = rest.sum(axis=1) <= 0
            out[np.ix_(lines[dead], np.flatnonzero(self.grid <= 0))] = -1
        return out

    def _counts_one(self, rest: np.ndarray, stream: int) -> np.ndarray:
        """Each sample's interval of t from its columns, then the count at every grid value."""
        lower, upper, flat = self._split(stream)
        out = np.empty((rest.shape[0], self.grid.size), dtype=np.int64)
        width = max(1, self._margins.shape[1])
        for part in chunks(rest.shape[0], _BLOCK // width):
            w = rest[part]
            lo = np.full((w.shape[0], self.n_samples), -np.inf, dtype=np.float32)
            hi = np.full((w.shape[0], self.n_samples), np.inf, dtype=np.float32)
            if lower.samples.size:
                lo[:, lower.samples] = np.maximum.reduceat((w @ lower.margins) * lower.inverse,
                                                           lower.starts, axis=1)
            if upper.samples.size:
                hi[:, upper.samples] = np.minimum.reduceat((w @ upper.margins) * upper.inverse,
                                                           upper.starts, axis=1)
            if flat.samples.size:  # e = 0: the margin does not move with t; it must be > 0
                blocked = np.logical_or.reduceat((w @ flat.margins) <= 0, flat.starts, axis=1)
                lo[:, flat.samples] = np.where(blocked, np.inf, lo[:, flat.samples])
            out[part] = _grid_counts(lo, hi, self.grid)
        return out + self.always


def _segment_starts(segment: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First column of each sample's run of columns, and the sample."""
    starts = np.flatnonzero(np.r_[True, segment[1:] != segment[:-1]]) if segment.size else segment
    return starts, segment[starts]


def _grid_counts(lo: np.ndarray, hi: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Per line, how many samples have lo < t < hi at each value t of the ascending grid."""
    g = grid.size
    first = np.searchsorted(grid, lo, side="right")  # first grid value above lo
    stop = np.searchsorted(grid, hi, side="left")  # first grid value at or above hi
    line = np.arange(lo.shape[0])[:, None] * (g + 1)
    valid = first < stop
    size = lo.shape[0] * (g + 1)
    delta = (np.bincount((line + first)[valid], minlength=size)
             - np.bincount((line + stop)[valid], minlength=size))
    return np.cumsum(delta.reshape(lo.shape[0], g + 1), axis=1)[:, :g]
