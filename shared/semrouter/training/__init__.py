"""Training: everything that learns from data, kept apart from serving.

``semrouter`` routes without importing this package: a route set's head, thresholds and
calibration are stored as plain values (``semrouter._head``, ``_learned.py``, ``_routeset.py``)
that serving applies. Learning imports it on first use: :meth:`SemanticRouter.fit` and
``evaluate`` (``_fitting.py``, ``_crossfit.py``, ``_thresholds.py``, ``_evaluation.py``),
self-training when the routes change (``_selftrain.py``, ``_abstention.py``) and fitting a head
(``_head.py``). Its modules are private; the public names (``EvaluationReport``) are exported
by ``semrouter``.
"""
