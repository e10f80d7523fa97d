"""Aggregation: how a route's nearest utterances become its similarity, in one place.

The scorer (every query, ``_scorer.py``), self-training (each utterance's leave-one-out score,
``training/_abstention.py``) and the options (:class:`~semrouter.RouterOptions`) all use
:data:`Aggregation` and :func:`aggregate`, so a new rule is one name in the ``Literal`` and one
branch in :func:`aggregate` (and :func:`hits_counted` if it reads more than ``top_k`` hits).
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np
import numpy.typing as npt

from ._exceptions import ConfigurationError

__all__ = ["AGGREGATIONS", "Aggregation", "aggregate", "hits_counted"]

FloatArray = npt.NDArray[np.float64]
Aggregation = Literal["mean", "max"]
AGGREGATIONS: tuple[Aggregation, ...] = get_args(Aggregation)


def hits_counted(aggregation: Aggregation, top_k: int) -> int:
    """How many of a route's best hits its similarity reads: 1 for ``"max"``, else ``top_k``."""
    return 1 if aggregation == "max" else top_k


def aggregate(
    hits: npt.ArrayLike,
    aggregation: Aggregation,
    counts: npt.NDArray[np.int64] | None = None,
) -> FloatArray:
    """The route similarity of each (query, route) pair from its best hits: their ``"mean"``
    or their ``"max"``.

    Args:
        hits: (k, m): row ``j`` holds the ``j``-th best hit of each of ``m`` pairs (rows, not
            columns: each rule is then ``k`` whole-vector steps, 3x faster at routing's sizes),
            ``k`` up to :func:`hits_counted`.
        aggregation: the rule.
        counts: how many leading rows of each pair are hits (a route with fewer utterances
            than ``top_k``); ``None``: all ``k``.

    Example:
        >>> aggregate([[0.9, 0.8], [0.5, 0.0]], "mean", np.array([2, 1])).tolist()
        [0.7, 0.8]
    """
    values = np.asarray(hits, dtype=np.float64)
    used = None if counts is None else np.arange(values.shape[0])[:, None] < counts
    if aggregation == "max":
        picked = values if used is None else np.where(used, values, -np.inf)
        return np.asarray(picked.max(axis=0), dtype=np.float64)
    if aggregation == "mean":
        if counts is None or used is None:
            total = values.sum(axis=0)  # / k: mean() with less of its overhead
            return np.asarray(total / values.shape[0], dtype=np.float64)
        total = np.where(used, values, 0.0).sum(axis=0)
        return np.asarray(total / np.maximum(counts, 1), dtype=np.float64)
    raise ConfigurationError(f"aggregation must be one of {', '.join(AGGREGATIONS)}")
