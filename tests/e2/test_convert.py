"""Values outside the contract, replaced in place on the packed array."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ric.e2.convert import MAX_ABS_VALUE, replace_invalid


def test_replace_invalid_counts_each_reason_and_keeps_the_rest() -> None:
    """Infinities and magnitudes over 1e15 become NaN and are counted by reason; valid values,
    the bound itself and NaN are untouched."""
    values = np.arange(100_000, dtype=np.float64)
    values[[3, 50_000]] = [np.inf, -np.inf]
    values[[7, 8, 9]] = [1e308, -1.5e15, np.nextafter(MAX_ABS_VALUE, np.inf)]
    values[[10, 11, 12]] = [np.nan, MAX_ABS_VALUE, -MAX_ABS_VALUE]
    told: list[tuple[str, int]] = []
    replace_invalid(values, lambda reason, count: told.append((reason, count)))
    assert told == [("infinite", 2), ("out_of_range", 3)]
    assert np.isnan(values[[3, 50_000, 7, 8, 9, 10]]).all()
    assert values[11] == MAX_ABS_VALUE and values[12] == -MAX_ABS_VALUE
    assert np.count_nonzero(np.isnan(values)) == 6


def test_replace_invalid_leaves_valid_and_empty_arrays_alone() -> None:
    """All-valid, all-NaN and empty arrays pass without a word."""
    told: list[tuple[str, int]] = []
    for values in (np.array([1.0, -2.0]), np.full(5, np.nan), np.empty(0)):
        before = values.copy()
        replace_invalid(values, lambda reason, count: told.append((reason, count)))
        np.testing.assert_array_equal(values, before)
    assert told == []


@pytest.mark.parametrize("entities", [1, 8, 40])
def test_small_and_large_matrices_are_read_and_checked_alike(entities: int) -> None:
    """A matrix read on the few-values path (no NumPy reductions) and one on the NumPy path
    give the same values, NaN where the contract says, and the same replacement counts."""
    from ric._proto.e2.v1 import e2_pb2, kpm_pb2
    from ric.e2.convert import report_from_indication
    from ric.report import EntityKind

    names = ("a", "b", "c", "d")
    ind = e2_pb2.Indication()
    m = ind.kpm.matrix
    m.entity_kind = kpm_pb2.ENTITY_KIND_UE
    m.metric_names.extend(names)
    m.entity_ids.extend(str(i) for i in range(entities))
    values = [float(i) for i in range(4 * entities)]
    values[0], values[1], values[2] = math.inf, -2 * MAX_ABS_VALUE, math.nan
    m.values.extend(values)
    told: list[tuple[str, int]] = []
    report = report_from_indication(
        "n", ind, kind=EntityKind.UE, metrics=names, replaced=lambda k, n: told.append((k, n))
    )
    assert report.values.shape == (entities, 4)
    assert np.isnan(report.values.flat[:3]).all()
    assert report.values.flat[3:].tolist() == values[3:]
    assert told == [("infinite", 1), ("out_of_range", 1)]
