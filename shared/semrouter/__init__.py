"""semrouter: semantic routing for LLM applications, on Qdrant.

Example:
    >>> from semrouter import Route, SemanticRouter
    >>> router = SemanticRouter([  # doctest: +SKIP
    ...     Route("chitchat", ["how's the weather today?", "lovely weather today"]),
    ...     Route("politics", ["isn't politics the best thing ever"]),
    ... ])
    >>> router.route("What have you been upto?").name  # doctest: +SKIP
    'chitchat'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._evaluation import EvaluationReport
from ._exceptions import (
    BackendUnavailableError,
    ConfigurationError,
    EncoderError,
    IndexMismatchError,
    InvalidQueryError,
    MissingDependencyError,
    NoRouteMatchedError,
    QueryTypeError,
    RouteNotFoundError,
    SemRouterError,
)
from ._fitting import Calibration
from ._index import SyncReport
from ._router import SemanticRouter, StaleCalibrationWarning
from ._routes import Route, RouteMatch
from .encoders import Encoder, FakeEncoder

if TYPE_CHECKING:
    from .encoders import LocalEncoder, OpenAIEncoder

__version__ = "0.1.0"

__all__ = [
    "BackendUnavailableError",
    "Calibration",
    "ConfigurationError",
    "Encoder",
    "EncoderError",
    "EvaluationReport",
    "FakeEncoder",
    "IndexMismatchError",
    "InvalidQueryError",
    "LocalEncoder",
    "MissingDependencyError",
    "NoRouteMatchedError",
    "OpenAIEncoder",
    "QueryTypeError",
    "Route",
    "RouteMatch",
    "RouteNotFoundError",
    "SemRouterError",
    "SemanticRouter",
    "StaleCalibrationWarning",
    "SyncReport",
    "__version__",
]


def __getattr__(name: str) -> Any:
    # Encoders whose extras may be missing are imported on first use, not at import time.
    if name in ("LocalEncoder", "OpenAIEncoder"):
        from . import encoders

        return getattr(encoders, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
