"""Labelled Prometheus instruments on the call path, with their children looked up once.

``Counter.labels(...)`` validates, builds a key and takes a lock on every call (~2-3 µs here); a
decision touches eight or so children, so the call path keeps each child it has used in a dict.
The label sets are bounded (actions, reasons, degraded causes, tenants); past ``max_children``
distinct sets the cache stops growing and the instrument's own ``labels`` answers.
"""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar

Child = TypeVar("Child", covariant=True)


class _Labelled(Protocol[Child]):
    def labels(self, *values: str) -> Child: ...


class Children(Generic[Child]):
    """``children(*values)`` is ``metric.labels(*values)``, cached."""

    __slots__ = ("_cache", "_max", "_metric")

    def __init__(self, metric: _Labelled[Child], max_children: int = 10_000) -> None:
        self._metric = metric
        self._max = max_children
        self._cache: dict[tuple[str, ...], Child] = {}

    def __call__(self, *values: str) -> Child:
        """The child for these label values."""
        child = self._cache.get(values)
        if child is None:
            child = self._metric.labels(*values)
            if len(self._cache) < self._max:
                self._cache[values] = child
        return child
