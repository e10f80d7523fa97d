"""The learned route head: multinomial logistic regression on frozen embeddings, in NumPy.

Scoring is one matrix product and a softmax; this module is what serving needs (apply, save,
load). Fitting (a deterministic full-batch L-BFGS, no scikit-learn, no torch; optionally with
an extra "none" class learnt from examples that should match no route) is
``semrouter.training._head``, imported only when a head is fitted.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from ._exceptions import ConfigurationError

__all__ = ["LogisticHead"]

_FORMAT = "semrouter.logistic_head/1"


class LogisticHead:
    """A softmax classifier over routes, on top of a frozen encoder.

    Build one with :meth:`fit`; scoring is one matrix product and a softmax. Label ``-1`` in
    the training labels means "matches no route": such rows train an extra *none* class whose
    probability mass is taken away from the routes, so :meth:`predict_proba` rows sum to
    ``1 - p(none)`` and a threshold on the best route's probability abstains naturally.

    Example:
        >>> import numpy as np
        >>> X = np.eye(4, dtype=np.float32)[[0, 0, 1, 1, 2, 2]]
        >>> head = LogisticHead.fit(X, np.array([0, 0, 1, 1, -1, -1]), route_names=["a", "b"])
        >>> head.predict_proba(X[:1]).argmax(axis=1).tolist()
        [0]
    """

    def __init__(
        self,
        weights: npt.ArrayLike,
        bias: npt.ArrayLike,
        *,
        route_names: Sequence[str],
        has_none: bool = False,
        temperature: float = 1.0,
        fingerprint: str | None = None,
    ) -> None:
        self.weights = np.ascontiguousarray(weights, dtype=np.float32)
        self.bias = np.ascontiguousarray(bias, dtype=np.float32).reshape(-1)
        self.route_names = tuple(route_names)
        self.has_none = bool(has_none)
        self.temperature = float(temperature)
        #: The encoder fingerprint the head was trained on, when the caller recorded it.
        self.fingerprint = fingerprint
        classes = len(self.route_names) + int(self.has_none)
        if self.weights.ndim != 2 or self.weights.shape[1] != classes:
            raise ConfigurationError(
                f"weights of shape {self.weights.shape} do not fit {classes} classes"
            )
        if self.bias.shape != (classes,):
            raise ConfigurationError(f"bias of shape {self.bias.shape}, expected ({classes},)")
        if not self.temperature > 0.0:
            raise ConfigurationError("temperature must be positive")

    @property
    def dimension(self) -> int:
        """Length of the embeddings the head takes."""
        return int(self.weights.shape[0])

    @classmethod
    def fit(cls, X: npt.ArrayLike, y: npt.ArrayLike, **options: Any) -> LogisticHead:
        """Fit a head on embeddings ``X`` (n, d) and labels ``y`` (n,) in ``[0, C)`` or -1;
        ``options`` are :func:`semrouter.training._head.fit_head`'s (``route_names``, ``l2``,
        ``class_weight``, ``start`` ...), which documents them. Imports training on use."""
        from .training._head import fit_head

        return fit_head(X, y, **options)

    def logits(self, X: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Raw class scores ``X @ W + b``, divided by the temperature; (n, C[+1])."""
        data = np.asarray(X, dtype=np.float32)
        if data.ndim != 2 or data.shape[1] != self.dimension:
            raise ConfigurationError(f"expected (n, {self.dimension}) embeddings, got {data.shape}")
        z = data @ self.weights + self.bias
        return z / np.float32(self.temperature) if self.temperature != 1.0 else z

    def predict_proba(
        self, X: npt.ArrayLike, *, with_none: bool = False
    ) -> npt.NDArray[np.float32]:
        """Route probabilities (n, C); with ``with_none`` the none class is the last column."""
        z = self.logits(X)
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        if self.has_none and not with_none:
            return np.ascontiguousarray(z[:, : len(self.route_names)])
        return z

    def with_temperature(self, temperature: float) -> LogisticHead:
        """The same head with its logits divided by ``temperature``."""
        return LogisticHead(
            self.weights,
            self.bias,
            route_names=self.route_names,
            has_none=self.has_none,
            temperature=temperature,
            fingerprint=self.fingerprint,
        )

    def to_dict(self, *, encoding: Literal["base64", "list"] = "base64") -> dict[str, Any]:
        """A JSON/YAML-safe mapping; ``"base64"`` packs float32 bytes, ``"list"`` plain floats."""

        def pack(array: npt.NDArray[np.float32]) -> Any:
            if encoding == "list":
                return array.tolist()
            return base64.b64encode(array.astype("<f4").tobytes()).decode("ascii")

        return {
            "format": _FORMAT,
            "route_names": list(self.route_names),
            "has_none": self.has_none,
            "dimension": self.dimension,
            "temperature": self.temperature,
            "fingerprint": self.fingerprint,
            "weights": pack(self.weights),
            "bias": pack(self.bias),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LogisticHead:
        """Rebuild a head from :meth:`to_dict`'s output."""
        if not isinstance(data, Mapping) or data.get("format") != _FORMAT:
            raise ConfigurationError(f"not a logistic head (expected format {_FORMAT!r})")
        try:
            names = [str(name) for name in data["route_names"]]
            has_none = bool(data["has_none"])
            classes = len(names) + int(has_none)
            dimension = int(data["dimension"])
            weights = _unpack(data["weights"]).reshape(dimension, classes)
            bias = _unpack(data["bias"]).reshape(classes)
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(f"invalid logistic head: {exc}") from exc
        return cls(
            weights,
            bias,
            route_names=names,
            has_none=has_none,
            temperature=float(data.get("temperature", 1.0)),
            fingerprint=data.get("fingerprint"),
        )

    def __repr__(self) -> str:
        none = ", has_none=True" if self.has_none else ""
        return f"LogisticHead(routes={len(self.route_names)}, dimension={self.dimension}{none})"


def _unpack(value: Any) -> npt.NDArray[np.float32]:
    if isinstance(value, str):
        return np.frombuffer(base64.b64decode(value, validate=True), dtype="<f4").astype(np.float32)
    return np.asarray(value, dtype=np.float32)
