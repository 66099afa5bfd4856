"""Fuzzing trace reading and CSV import: damaged traces and hostile CSV rows never crash the
reader or the importer; damage is a TraceError, bad rows are reported and skipped."""

from __future__ import annotations

import shutil
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ric.trace import CsvImportError, TraceError, TraceReader, import_csv
from ric.trace.synthetic import write_network_trace

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SETTINGS
@given(data=st.data())
def test_damaged_traces_fail_cleanly(tmp_path_factory: object, data: st.DataObject) -> None:
    """Flipped, cut or spliced bytes of a valid trace are read up to the damage and then end
    in a TraceError, never another exception."""
    folder = Path(tmp_path_factory.mktemp("t"))  # type: ignore[attr-defined]
    good = write_network_trace(folder / "good.trace", sites=1, seconds=3)
    raw = bytearray(good.read_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        at = data.draw(st.integers(0, max(0, len(raw) - 1)))
        if op == "flip" and raw:
            raw[at] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "cut":
            del raw[at:]
        else:
            raw[at:at] = data.draw(st.binary(min_size=1, max_size=16))
    bad = folder / "bad.trace"
    bad.write_bytes(bytes(raw))
    try:
        with TraceReader(bad) as reader:
            for _ in reader:
                pass
    except TraceError as exc:  # damage may or may not be reached: no pytest.raises here
        assert str(bad) in str(exc)  # noqa: PT017


CELLS = st.one_of(
    st.text(max_size=8), st.sampled_from(["", "nan", "-1", "1e309", "1,2", '"', "0x10", "9" * 30])
)


@SETTINGS
@given(rows=st.lists(st.lists(CELLS, min_size=0, max_size=40), min_size=1, max_size=8))
def test_hostile_csv_rows_are_skipped_and_reported(
    tmp_path_factory: object, rows: list[list[str]]
) -> None:
    """Rows of any shape and content in a ColO-RAN-style file are either imported or reported
    with file and line; the import never fails with anything but a clear CsvImportError."""
    from tests.trace.test_csvimport import HEADER

    folder = Path(tmp_path_factory.mktemp("c")) / "exp" / "bs1" / "slices_bs1"  # type: ignore[attr-defined]
    folder.mkdir(parents=True)
    path = folder / "1010123456002_metrics.csv"
    path.write_text(HEADER + "\n" + "\n".join(",".join(r) for r in rows) + "\n")
    try:
        result = import_csv([folder.parent.parent], folder.parent.parent / "out.trace")
    except CsvImportError as exc:  # e.g. no usable row at all: named, with the file
        assert str(path) in str(exc) or "could be imported" in str(exc)  # noqa: PT017
    else:
        assert all(str(path) in str(s) for s in result.skipped)
    shutil.rmtree(folder.parent.parent, ignore_errors=True)
