"""Coalescing: requests that arrive together are encoded (and searched) as one batch.

A model encodes a batch of 32 short texts in far less than 32 times the time of one (on two
cores, all-MiniLM-L6-v2 does about 1.8 x more texts a second in batches), so many callers at
once (threads calling ``route()``, tasks awaiting ``aroute()``) are served faster by one batch
than by taking turns. One worker thread per encoder takes the queued requests and encodes them
together; a caller waits on a future (``await``-able without blocking the event loop). The
router uses the same mechanism for its search (``_search_batch.py``): the queries of callers
that arrive together are searched with one matrix product or one Qdrant batch query.

The wait is bounded and adaptive: a request that finds the encoder idle (the last batch held one
request) is encoded at once, so a lone caller pays nothing but a thread hand-off; under load the
worker waits at most ``wait_s`` after the first queued request (or until ``max_texts`` texts
are queued) before it starts the next batch.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt

from .._exceptions import ConfigurationError

__all__ = ["Coalescer", "check_coalesce_ms", "copy_rows"]

Vectors = npt.NDArray[np.float32]
#: What a request is made of (texts) and what a batch's run returns (their rows).
T = TypeVar("T")
R = TypeVar("R")
#: A worker with nothing to do for this long ends (the next request starts another).
_IDLE_EXIT_S = 5.0
#: The longest wait a caller may configure.
MAX_COALESCE_MS = 100.0


def check_coalesce_ms(value: object) -> float | None:
    """``value`` as a coalescing wait in ms (``None`` or 0: off), or a ConfigurationError."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError("coalesce_ms must be a number of milliseconds or None")
    if not 0.0 <= float(value) <= MAX_COALESCE_MS:
        raise ConfigurationError(f"coalesce_ms must be from 0 to {MAX_COALESCE_MS:g}")
    return float(value) if value else None


class _Job(Generic[T, R]):
    __slots__ = ("future", "texts")

    def __init__(self, texts: list[T]) -> None:
        self.texts = texts
        self.future: Future[R] = Future()


def copy_rows(vectors: Vectors, start: int, stop: int) -> Vectors:
    """The encoder's ``take``: a request gets a copy of its rows of the batch's array."""
    part: Vectors = vectors[start:stop].copy()
    return part


class Coalescer(Generic[T, R]):
    """Serves :meth:`submit` calls from one worker thread, many requests per model call.

    Args:
        run: does one batch of requests' items (the encoder: a list of texts to their normalised
            rows); called by the worker only.
        wait_s: the longest the worker waits for more requests once one is queued under load.
        max_texts: start the batch at once when this many items are queued.
        take: a request's part of a shared batch's result (``take(result, start, stop)``, the
            rows of its texts; the encoder's is :func:`copy_rows`).
    """

    def __init__(
        self,
        run: Callable[[list[T]], R],
        *,
        wait_s: float,
        max_texts: int,
        take: Callable[[R, int, int], R],
    ) -> None:
        self._run = run
        self._take = take
        self.wait_s = wait_s
        self.max_texts = max(1, max_texts)
        self._reset()

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        # A copy (copy.deepcopy, pickling) gets its own queue and worker, none of the waiting.
        return (_rebuild, (self._run, self.wait_s, self.max_texts, self._take))

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._cond = threading.Condition(threading.Lock())
        self._queue: deque[_Job[T, R]] = deque()
        self._queued = 0  # texts in the queue
        self._worker: threading.Thread | None = None
        self._last_batch = 1  # requests in the last batch: > 1 means the encoder is busy

    def submit(self, texts: list[T]) -> Future[R]:
        """Queue ``texts``; the future gets their rows (or the encoder's exception)."""
        if self._pid != os.getpid():  # a forked child: the parent's worker is not here
            self._reset()
        job: _Job[T, R] = _Job(texts)
        with self._cond:
            self._queue.append(job)
            self._queued += len(texts)
            if self._worker is None:
                self._worker = threading.Thread(
                    target=self._serve, name="semrouter-coalescer", daemon=True
                )
                self._worker.start()
            else:
                self._cond.notify()
        return job.future

    def _serve(self) -> None:
        while True:
            jobs = self._next_batch()
            if jobs is None:
                return
            self._encode(jobs)

    def _next_batch(self) -> list[_Job[T, R]] | None:
        with self._cond:
            while not self._queue:
                if not self._cond.wait(_IDLE_EXIT_S) and not self._queue:
                    self._worker = None
                    return None
            if self._last_batch > 1 or len(self._queue) > 1:  # busy: gather a batch
                deadline = time.monotonic() + self.wait_s
                while self._queued < self.max_texts:
                    left = deadline - time.monotonic()
                    if left <= 0 or not self._cond.wait(left):
                        break
            jobs: list[_Job[T, R]] = []
            texts = 0
            while self._queue and (not jobs or texts + len(self._queue[0].texts) <= self.max_texts):
                job = self._queue.popleft()
                texts += len(job.texts)
                jobs.append(job)
            self._queued -= texts
            self._last_batch = len(jobs)
            return jobs

    def _encode(self, jobs: list[_Job[T, R]]) -> None:
        live = [job for job in jobs if job.future.set_running_or_notify_cancel()]
        if not live:
            return
        texts = [text for job in live for text in job.texts]
        try:
            vectors = self._run(texts)
        except BaseException as exc:  # every waiting caller gets the encoder's own error
            for job in live:
                job.future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        start = 0
        for job in live:
            stop = start + len(job.texts)
            job.future.set_result(self._take(vectors, start, stop) if len(live) > 1 else vectors)
            start = stop


def _rebuild(
    run: Callable[[list[T]], R], wait_s: float, max_texts: int, take: Callable[[R, int, int], R]
) -> Coalescer[T, R]:
    return Coalescer(run, wait_s=wait_s, max_texts=max_texts, take=take)
