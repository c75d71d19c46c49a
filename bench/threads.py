"""BLAS thread limits (numpy, scipy, scikit-learn), apart from torch's own intra-op threads
(`slrbench.training.compute.torch_threads`): importable without torch."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_BLAS: list[Any] = []  # [threadpoolctl controller or None], found once (scanning is slow)


@contextmanager
def blas_threads(threads: int) -> Iterator[None]:
    """Run the block with at most ``threads`` BLAS threads (numpy, scikit-learn): a worker's
    thread budget holds for solver-fitted methods and fusion too."""
    if not _BLAS:
        try:
            from threadpoolctl import ThreadpoolController  # ships with scikit-learn
            _BLAS.append(ThreadpoolController())
        except ImportError:  # pragma: no cover - optional: without it BLAS keeps its default
            _BLAS.append(None)
    if _BLAS[0] is None:
        yield
        return
    with _BLAS[0].limit(limits=threads, user_api="blas"):
        yield
