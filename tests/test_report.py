"""Columnar reports: column views, rows, selection, and read-only values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ric.report import EntityKind, KpmReport


def make() -> KpmReport:
    return KpmReport(
        node="gnb-001-01-1",
        kind=EntityKind.UE,
        metrics=("a", "b"),
        entity_ids=("1", "2", "3"),
        values=np.array([1.0, 2.0, 3.0, math.nan, 5.0, 6.0]),
        cells=("001-01-1", "001-01-1", "001-01-2"),
    )


def test_columns_are_views_of_one_matrix() -> None:
    """A column is a read-only view of the matrix, in entity order."""
    report = make()
    assert report.values.shape == (3, 2)
    assert list(report["b"][[0, 2]]) == [2.0, 6.0]
    assert math.isnan(report.column("b")[1])
    assert np.shares_memory(report["a"], report.values)
    with pytest.raises(ValueError, match="read-only"):
        report["a"][0] = 9.0


def test_rows_and_missing_metric() -> None:
    """Rows give values by name; a missing metric raises KeyError naming what the report has."""
    report = make()
    rows = list(report.rows())
    assert [(r.id, r.cell, r["a"]) for r in rows] == [
        ("1", "001-01-1", 1.0),
        ("2", "001-01-1", 3.0),
        ("3", "001-01-2", 5.0),
    ]
    assert report.row("3").as_dict() == {"a": 5.0, "b": 6.0}
    with pytest.raises(KeyError, match="it has a, b"):
        report["zzz"]
    with pytest.raises(KeyError, match="entity '9'"):
        report.row("9")


def test_select_and_to_dict() -> None:
    """Selecting metrics keeps entities; to_dict turns NaN into None."""
    report = make()
    only_b = report.select(("b",))
    assert only_b.metrics == ("b",) and list(only_b["b"][[0, 2]]) == [2.0, 6.0]
    assert report.to_dict()["rows"][1]["values"] == {"a": 3.0, "b": None}


class _Counted(tuple[str, ...]):
    """A column that counts how often it is read whole (as a decoded message's field is)."""

    reads = 0

    def __iter__(self):  # type: ignore[no-untyped-def]
        type(self).reads += 1
        return super().__iter__()


def test_strings_of_a_decoded_report_are_read_only_when_used() -> None:
    """A report from columns reads no entity string until one is used, shares that laziness
    with a report derived from it, and then gives the same rows as an eager one."""
    _Counted.reads = 0
    report = KpmReport.from_columns(
        node="gnb-001-01-1",
        kind=EntityKind.UE,
        metrics=("a", "b"),
        entity_ids=_Counted(("1", "2", "3")),
        values=np.array([1.0, 2.0, 3.0, math.nan, 5.0, 6.0]).reshape(3, 2),
        cells=_Counted(("001-01-1", "001-01-1", "001-01-2")),
    )
    derived = report.with_values(("b",), report.values[:, [1]].copy())
    assert len(report) == 3 and list(report["b"][[0, 2]]) == [2.0, 6.0]
    assert len(derived) == 3 and repr(derived).endswith("entities=3, metrics=['b'])")
    assert _Counted.reads == 0
    eager = make()
    assert report.to_dict() == eager.to_dict()
    assert _Counted.reads == 2  # ids and cells, once: the second use reads nothing again
    assert report.entity_ids == ("1", "2", "3") and report.slices == ("", "", "")
    assert derived.cells == eager.cells and _Counted.reads == 4
    with pytest.raises(ValueError, match="read-only"):
        report.values[0, 0] = 9.0


def test_a_decoded_cell_report_without_cells_names_each_row_its_own_cell() -> None:
    """In a cell report whose node sent no cell column, each row's cell is the row itself."""
    report = KpmReport.from_columns(
        node="n",
        kind=EntityKind.CELL,
        metrics=("a",),
        entity_ids=("c1", "c2"),
        values=np.array([[1.0], [2.0]]),
    )
    assert report.cells == ("c1", "c2") and report.row("c2")["a"] == 2.0
