"""Values outside the contract, replaced in place on the packed array."""

from __future__ import annotations

import numpy as np

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
