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

from ._conversation import (
    ConversationMatch,
    ConversationOptions,
    ConversationRouter,
    Turn,
    TurnWeight,
)
from ._exceptions import (
    BackendError,
    BackendUnavailableError,
    ConfigurationError,
    EncoderError,
    GateRefusedError,
    IndexMismatchError,
    InvalidQueryError,
    MissingDependencyError,
    NoRouteMatchedError,
    QueryTypeError,
    ReadOnlyRouterError,
    RouteNotFoundError,
    RouterClosedError,
    RouterLockedError,
    RouteSetConflictError,
    RouteSetMismatchError,
    RouteSetNotFoundError,
    SemRouterError,
    StorageFullError,
    StoreDamagedError,
)
from ._gate import GateExample, GateReport, GateRoute, gate
from ._importers import ImportResult, import_qdrant_collection, import_router
from ._index import SyncReport
from ._options import RouterOptions
from ._router import SemanticRouter
from ._router_version import StaleCalibrationWarning
from ._routes import Route, RouteMatch
from ._routeset import Calibration
from ._routestore import RouteSetId
from ._stores._location import QdrantLocation
from ._telemetry import configure_telemetry
from .encoders import Encoder, FakeEncoder
from .tools import EncodeCache, ToolIndex, ToolMatch, ToolOptions, ToolSpec

if TYPE_CHECKING:
    from .encoders import LocalEncoder, MultilingualEncoder, OpenAIEncoder
    from .training._evaluation import EvaluationReport

__version__ = "0.1.0"

__all__ = [
    "BackendError",
    "BackendUnavailableError",
    "Calibration",
    "ConfigurationError",
    "ConversationMatch",
    "ConversationOptions",
    "ConversationRouter",
    "EncodeCache",
    "Encoder",
    "EncoderError",
    "EvaluationReport",
    "FakeEncoder",
    "GateExample",
    "GateRefusedError",
    "GateReport",
    "GateRoute",
    "ImportResult",
    "IndexMismatchError",
    "InvalidQueryError",
    "LocalEncoder",
    "MissingDependencyError",
    "MultilingualEncoder",
    "NoRouteMatchedError",
    "OpenAIEncoder",
    "QdrantLocation",
    "QueryTypeError",
    "ReadOnlyRouterError",
    "Route",
    "RouteMatch",
    "RouteNotFoundError",
    "RouteSetConflictError",
    "RouteSetId",
    "RouteSetMismatchError",
    "RouteSetNotFoundError",
    "RouterClosedError",
    "RouterLockedError",
    "RouterOptions",
    "SemRouterError",
    "SemanticRouter",
    "StaleCalibrationWarning",
    "StorageFullError",
    "StoreDamagedError",
    "SyncReport",
    "ToolIndex",
    "ToolMatch",
    "ToolOptions",
    "ToolSpec",
    "Turn",
    "TurnWeight",
    "__version__",
    "configure_telemetry",
    "gate",
    "import_qdrant_collection",
    "import_router",
]


def __getattr__(name: str) -> Any:
    # Encoders whose extras may be missing are imported on first use, not at import time.
    if name in ("LocalEncoder", "MultilingualEncoder", "OpenAIEncoder"):
        from . import encoders

        return getattr(encoders, name)
    if name == "EvaluationReport":  # training, which serving never imports (semrouter.training)
        from .training._evaluation import EvaluationReport

        return EvaluationReport
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
