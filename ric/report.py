"""Columnar KPM reports, as xApps receive them.

A report is one measurement matrix: metric names once, entity ids once, and the values as a
read-only NumPy array of shape ``(entities, metrics)``. Nothing is copied per value; rows and
dicts are built only when an xApp asks for them.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
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
    """

    __slots__ = (
        "_index",
        "cells",
        "collection_start",
        "entity_ids",
        "granularity_ms",
        "kind",
        "metrics",
        "node",
        "slices",
        "values",
    )

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
        values.flags.writeable = False
        self.node = node
        self.kind = kind
        self.metrics = metrics
        self.entity_ids = entity_ids
        self.values = values
        self.cells = (
            cells if cells else (entity_ids if kind is EntityKind.CELL else ("",) * len(entity_ids))
        )
        self.slices = slices if slices else ("",) * len(entity_ids)
        self.collection_start = collection_start
        self.granularity_ms = granularity_ms
        self._index = {name: i for i, name in enumerate(metrics)}

    def __len__(self) -> int:
        return len(self.entity_ids)

    def __repr__(self) -> str:
        return (
            f"KpmReport(node={self.node!r}, kind={self.kind.value}, "
            f"entities={len(self.entity_ids)}, metrics={list(self.metrics)})"
        )

    def column(self, metric: str) -> FloatArray:
        """The values of ``metric`` for every entity, as a read-only array view."""
        try:
            return self.values[:, self._index[metric]]
        except KeyError:
            have = ", ".join(self.metrics)
            raise KeyError(f"metric {metric!r} is not in this report (it has {have})") from None

    __getitem__ = column

    def rows(self) -> Iterator[Row]:
        """Each entity as a ``Row``, in the node's order."""
        for i, entity in enumerate(self.entity_ids):
            yield Row(entity, self.cells[i], self.slices[i], self._index, self.values[i])

    def row(self, entity_id: str) -> Row:
        """The row of one entity; KeyError naming it when the report has no such entity."""
        for i, entity in enumerate(self.entity_ids):
            if entity == entity_id:
                return Row(entity, self.cells[i], self.slices[i], self._index, self.values[i])
        raise KeyError(f"entity {entity_id!r} is not in this report from {self.node}")

    def select(self, metrics: tuple[str, ...]) -> KpmReport:
        """A report with only ``metrics`` (in that order), sharing nothing mutable."""
        idx = [self._index[m] for m in metrics]
        return KpmReport(
            node=self.node,
            kind=self.kind,
            metrics=metrics,
            entity_ids=self.entity_ids,
            values=self.values[:, idx],
            cells=self.cells,
            slices=self.slices,
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
