"""Columnar KPM reports, as xApps receive them.

A report is one measurement matrix: metric names once, entity ids once, and the values as a
read-only NumPy array of shape ``(entities, metrics)``. Nothing is copied per value; rows and
dicts are built only when an xApp asks for them.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["EntityKind", "KpmReport", "Row"]

FloatArray = npt.NDArray[np.float64]


class EntityKind(enum.Enum):
    """What a report's rows are: cells, UEs or slices (per cell)."""

    CELL = "cell"
    UE = "ue"
    SLICE = "slice"


@dataclass(frozen=True, slots=True)
class Row:
    """One entity's values in a report, by metric name (``row["RRU.PrbUsedDl"]``)."""

    id: str
    cell: str
    slice: str
    _index: dict[str, int]
    _values: FloatArray

    def __getitem__(self, metric: str) -> float:
        try:
            return float(self._values[self._index[metric]])
        except KeyError:
            raise KeyError(f"metric {metric!r} is not in this report") from None

    def get(self, metric: str, default: float = float("nan")) -> float:
        """The value of ``metric``, or ``default`` when the report does not carry it."""
        i = self._index.get(metric)
        return default if i is None else float(self._values[i])

    def as_dict(self) -> dict[str, float]:
        """All values of this row, by metric name."""
        return {name: float(self._values[i]) for name, i in self._index.items()}


class KpmReport:
    """One KPM report from one node: a matrix of ``entities x metrics`` values.

    ``values`` is a read-only ``float64`` array, NaN where the node had no value; ``column``
    gives one metric for every entity, ``rows`` walks the entities. ``cells`` holds the cell of
    each entity (the entity itself for cell reports), ``slices`` the slice of each UE or slice
    row (empty strings when unknown).

    A report the runtime decodes reads ``entity_ids``, ``cells`` and ``slices`` from the
    node's message the first time any of them is used, and keeps that message until then: an
    xApp that only reads columns never pays for a Python string per entity.
    """

    __slots__ = (
        "_cells",
        "_entity_ids",
        "_index",
        "_slices",
        "_source",
        "collection_start",
        "granularity_ms",
        "kind",
        "metrics",
        "node",
        "values",
    )
    _entity_ids: tuple[str, ...] | None
    _cells: tuple[str, ...] | None
    _slices: tuple[str, ...] | None
    _source: tuple[Sequence[str], Sequence[str], Sequence[str]] | None
    _index: dict[str, int] | None

    def __init__(
        self,
        *,
        node: str,
        kind: EntityKind,
        metrics: tuple[str, ...],
        entity_ids: tuple[str, ...],
        values: FloatArray,
        cells: tuple[str, ...] = (),
        slices: tuple[str, ...] = (),
        collection_start: float = 0.0,
        granularity_ms: int = 0,
    ) -> None:
        shape = (len(entity_ids), len(metrics))
        if values.shape != shape:
            values = values.reshape(shape)
        self._set(node, kind, metrics, values, collection_start, granularity_ms)
        self._source = None
        self._entity_ids = entity_ids
        self._cells, self._slices = _fill(kind, entity_ids, cells, slices)

    @classmethod
    def from_columns(
        cls,
        *,
        node: str,
        kind: EntityKind,
        metrics: tuple[str, ...],
        entity_ids: Sequence[str],
        values: FloatArray,
        cells: Sequence[str] = (),
        slices: Sequence[str] = (),
        collection_start: float = 0.0,
        granularity_ms: int = 0,
    ) -> KpmReport:
        """A report whose entity strings are read from ``entity_ids``, ``cells`` and
        ``slices`` (sequences such as a decoded message's repeated fields, which must not
        change) only when first used. ``values`` must already have the shape ``(entities,
        metrics)``; the caller checked that the columns have one entry per entity or none.
        """
        self = cls.__new__(cls)
        self._set(node, kind, metrics, values, collection_start, granularity_ms)
        self._source = (entity_ids, cells, slices)
        self._entity_ids = self._cells = self._slices = None
        return self

    def _set(
        self,
        node: str,
        kind: EntityKind,
        metrics: tuple[str, ...],
        values: FloatArray,
        collection_start: float,
        granularity_ms: int,
    ) -> None:
        """What every report holds apart from its entity strings."""
        values.flags.writeable = False
        self.node = node
        self.kind = kind
        self.metrics = metrics
        self.values = values
        self.collection_start = collection_start
        self.granularity_ms = granularity_ms
        self._index = None

    def _strings(self) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
        ids, cells, slices = self._entity_ids, self._cells, self._slices
        if ids is None or cells is None or slices is None:
            source = self._source
            assert source is not None
            ids = tuple(source[0])
            cells, slices = _fill(self.kind, ids, tuple(source[1]), tuple(source[2]))
            # Two threads may both get here (an xApp thread and the runtime): each builds the
            # same tuples, and the message is let go once they are set.
            self._entity_ids, self._cells, self._slices = ids, cells, slices
            self._source = None
        return ids, cells, slices

    @property
    def entity_ids(self) -> tuple[str, ...]:
        """The id of each entity (row), in the node's order."""
        ids = self._entity_ids
        return self._strings()[0] if ids is None else ids

    @property
    def cells(self) -> tuple[str, ...]:
        """The cell of each entity (the entity itself in a cell report)."""
        cells = self._cells
        return self._strings()[1] if cells is None else cells

    @property
    def slices(self) -> tuple[str, ...]:
        """The slice of each entity (empty strings when unknown)."""
        slices = self._slices
        return self._strings()[2] if slices is None else slices

    def _metric_index(self) -> dict[str, int]:
        index = self._index
        if index is None:
            index = self._index = {name: i for i, name in enumerate(self.metrics)}
        return index

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def __repr__(self) -> str:
        return (
            f"KpmReport(node={self.node!r}, kind={self.kind.value}, "
            f"entities={len(self)}, metrics={list(self.metrics)})"
        )

    def column(self, metric: str) -> FloatArray:
        """The values of ``metric`` for every entity, as a read-only array view."""
        try:
            return self.values[:, self._metric_index()[metric]]
        except KeyError:
            have = ", ".join(self.metrics)
            raise KeyError(f"metric {metric!r} is not in this report (it has {have})") from None

    __getitem__ = column

    def rows(self) -> Iterator[Row]:
        """Each entity as a ``Row``, in the node's order."""
        ids, cells, slices = self._strings()
        index = self._metric_index()
        for i, entity in enumerate(ids):
            yield Row(entity, cells[i], slices[i], index, self.values[i])

    def row(self, entity_id: str) -> Row:
        """The row of one entity; KeyError naming it when the report has no such entity."""
        ids, cells, slices = self._strings()
        for i, entity in enumerate(ids):
            if entity == entity_id:
                return Row(entity, cells[i], slices[i], self._metric_index(), self.values[i])
        raise KeyError(f"entity {entity_id!r} is not in this report from {self.node}")

    def select(self, metrics: tuple[str, ...]) -> KpmReport:
        """A report with only ``metrics`` (in that order), sharing nothing mutable."""
        index = self._metric_index()
        return self.with_values(metrics, self.values[:, [index[m] for m in metrics]])

    def with_values(self, metrics: tuple[str, ...], values: FloatArray) -> KpmReport:
        """A report of the same node, time and entities with other ``metrics`` and
        ``values`` (shape ``(entities, len(metrics))``); the entity strings are shared, and
        still read only when first used."""
        source = self._source
        if source is not None and self._entity_ids is None:
            return KpmReport.from_columns(
                node=self.node,
                kind=self.kind,
                metrics=metrics,
                entity_ids=source[0],
                values=values.reshape(len(self), len(metrics)),
                cells=source[1],
                slices=source[2],
                collection_start=self.collection_start,
                granularity_ms=self.granularity_ms,
            )
        ids, cells, slices = self._strings()
        return KpmReport(
            node=self.node,
            kind=self.kind,
            metrics=metrics,
            entity_ids=ids,
            values=values,
            cells=cells,
            slices=slices,
            collection_start=self.collection_start,
            granularity_ms=self.granularity_ms,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN becomes None)."""
        return {
            "node": self.node,
            "kind": self.kind.value,
            "collection_start": self.collection_start,
            "granularity_ms": self.granularity_ms,
            "rows": [
                {
                    "id": r.id,
                    "cell": r.cell,
                    "slice": r.slice,
                    "values": {k: (None if v != v else v) for k, v in r.as_dict().items()},
                }
                for r in self.rows()
            ],
        }


def _fill(
    kind: EntityKind, ids: tuple[str, ...], cells: tuple[str, ...], slices: tuple[str, ...]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The cells and slices columns with their defaults when the node sent none."""
    if not cells:
        cells = ids if kind is EntityKind.CELL else ("",) * len(ids)
    return cells, slices if slices else ("",) * len(ids)
