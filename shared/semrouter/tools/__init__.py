"""Tool preselection for agents: one representation of a tool and one scoring, shared by the
LangChain and LlamaIndex adapters.

* :class:`ToolSpec`: a tool as the index sees it (name, description, arguments, examples).
* :class:`ToolIndex`: ranks tools for a request (:meth:`~ToolIndex.rank`), exact and with every
  part's score; learns from examples (:meth:`~ToolIndex.observe`, :meth:`~ToolIndex.fit`).
* :class:`EncodeCache`: each distinct text encoded once per process, shared by every index.
"""

from __future__ import annotations

from ._cache import EncodeCache
from ._index import ToolIndex
from ._options import ToolMatch, ToolOptions
from ._scoring import request_parts
from ._spec import ToolSpec, name_words
from ._store import location_from

__all__ = [
    "EncodeCache",
    "ToolIndex",
    "ToolMatch",
    "ToolOptions",
    "ToolSpec",
    "location_from",
    "name_words",
    "request_parts",
]
