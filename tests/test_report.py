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
