"""The trace recorder: nodes set up before it starts go to the header, everything after is
frames, both ways, and the file is complete at shutdown."""

from __future__ import annotations

from pathlib import Path

import pytest

from ric._proto.e2.v1 import e2_pb2
from ric.cli import main
from ric.config import load_config
from ric.e2.memory import MemoryLink
from ric.errors import ConfigError
from ric.plugins import Plugin
from ric.runtime import Runtime
from ric.testing import ManualClock
from ric.trace import Direction, TraceReader, TraceRecorder, scan
from ric.trace.recorder import recorder_from_config
from tests.conftest import Recorder, wait_for
from tests.e2node import indication, setup_request


async def test_header_holds_earlier_nodes_and_frames_hold_the_rest(tmp_path: Path) -> None:
    """A node set up before recording starts is in the header; a later node's setup, every
    message both ways and the disconnect are frames timed on the runtime's clock."""
    path = tmp_path / "run.trace"
    clock = ManualClock()
    recorder = TraceRecorder(path, metadata={"test": "yes"})
    runtime = Runtime(
        load_config(environ={}),
        [Plugin(Recorder, "tests")],
        sensors=[recorder],
        clock=clock,
        listen=False,
    )
    async with runtime:
        early = MemoryLink(runtime.endpoint, "early")
        assert early.setup(setup_request(node_id=1, cells=(11,))).HasField("setup_response")
        await clock.advance(1.0)
        await recorder.start(runtime)
        assert recorder.checks()[0].ok
        await clock.advance(0.5)
        late = MemoryLink(runtime.endpoint, "late")
        assert late.setup(setup_request(node_id=2, cells=(21,))).HasField("setup_response")
        request = next(
            m.subscription_request for m in late.take() if m.HasField("subscription_request")
        )
        late.send(
            e2_pb2.NodeMessage(
                indications=e2_pb2.IndicationBatch(
                    indications=[
                        indication(
                            request.request_id, ["RRU.PrbUsedDl", "RRU.PrbAvailDl"], ["001-01-21"]
                        )
                    ]
                )
            )
        )
        await clock.advance(0.25)
        late.close("node went away")
        await recorder.stop()
        await recorder.stop()  # stopping again is harmless
    with TraceReader(path) as reader:
        header = reader.header
        frames = list(reader)
    assert [(n.node, n.setup_offset_us) for n in header.nodes] == [("gnb-001-01-1", 0)]
    assert header.source == "ric run --record" and header.metadata == {"test": "yes"}
    assert header.start_unix_us == 1_700_000_001_000_000
    kinds = [
        (f.offset_us, f.node, f.direction.name, f.node_message().WhichOneof("message"))
        if f.direction is Direction.NODE_TO_RIC
        else (
            f.offset_us,
            f.node,
            f.direction.name,
            f.reason or f.ric_message().WhichOneof("message"),
        )
        for f in frames
    ]
    assert kinds[0] == (500_000, "gnb-001-01-2", "NODE_TO_RIC", "setup_request")
    assert (500_000, "gnb-001-01-2", "RIC_TO_NODE", "setup_response") in kinds
    assert (500_000, "gnb-001-01-2", "RIC_TO_NODE", "subscription_request") in kinds
    assert (500_000, "gnb-001-01-2", "NODE_TO_RIC", "indications") in kinds
    assert kinds[-1] == (750_000, "gnb-001-01-2", "DISCONNECTED", "node went away")
    assert recorder.frames == len(frames)


def test_record_key_and_flush_interval_come_from_the_config(tmp_path: Path) -> None:
    """[trace] record makes a recorder (none when empty); a bad interval names its key."""
    assert recorder_from_config(load_config(environ={})) is None
    config = load_config(environ={}, overrides={"trace.record": str(tmp_path / "x.trace.gz")})
    recorder = recorder_from_config(config)
    assert recorder is not None and recorder.path == tmp_path / "x.trace.gz"
    with pytest.raises(ConfigError, match=r"trace\.flush_interval_s"):
        load_config(environ={}, overrides={"trace.flush_interval_s": 0})


def test_ric_run_record_writes_a_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """ric run --record FILE leaves a complete trace that ric trace info reads."""
    path = tmp_path / "run.trace.gz"
    status = main(
        ["run", "--e2", "127.0.0.1:0", "--no-http", "--duration", "0.3", "--record", str(path)]
    )
    assert status == 0
    index = scan(path)
    assert index.error is None and index.compressed
    assert index.header.source == "ric run --record" and index.header.ric_id == "ric"
    capsys.readouterr()


async def test_recorded_ue_ids_are_pseudonymised_on_request(tmp_path: Path) -> None:
    """With [trace] pseudonymize, UE rows and UE control targets are written with keyed numeric
    pseudonyms, never the RAN UE ids; cell ids are kept."""
    from ric import Handover
    from ric.privacy import Pseudonymizer
    from ric.trace.recorder import recorder_from_config
    from tests.e2node import rc_function
    from tests.test_control import Controller

    key = tmp_path / "key"
    key.write_bytes(b"k" * 32)
    config = load_config(
        environ={},
        overrides={
            "trace.record": str(tmp_path / "p.trace"),
            "trace.pseudonymize": True,
            "privacy.key_file": str(key),
        },
    )
    recorder = recorder_from_config(config)
    assert recorder is not None
    privacy = Pseudonymizer.from_config(True, str(key))
    async with Runtime(
        config,
        [Plugin(Controller, "tests")],
        sensors=[recorder],
        components=[recorder],
        listen=False,
    ) as runtime:
        link = MemoryLink(runtime.endpoint, "n")
        link.setup(setup_request(node_id=1, cells=(11, 12), functions=[rc_function()]))
        rid = e2_pb2.NodeMessage().indications.indications.add().request_id
        link.send(
            e2_pb2.NodeMessage(
                indications=e2_pb2.IndicationBatch(
                    indications=[
                        indication(
                            rid, ["L1M.RSRP"], ["4242"], [-90.0], kind=2, cells=["001-01-11"]
                        )
                    ]
                )
            )
        )
        await wait_for(lambda: runtime.host("controller").instance is not None)
        app = runtime.host("controller").instance
        assert app is not None
        await app.control(Handover("4242", "001-01-11", "001-01-12"), timeout=0.05)
        link.take()  # what the RIC sent crosses the link (and is recorded) when the node reads
    with TraceReader(tmp_path / "p.trace") as reader:
        frames = list(reader)
    blob = b"".join(f.message for f in frames)
    assert b"4242" not in blob
    number = privacy.ue_number(4242)
    indications = [f.node_message() for f in frames if f.direction is Direction.NODE_TO_RIC]
    ues = [
        list(i.kpm.matrix.entity_ids)
        for m in indications
        if m.HasField("indications")
        for i in m.indications.indications
    ]
    assert ues == [[str(number)]]
    controls = [
        f.ric_message().control_request
        for f in frames
        if f.direction is Direction.RIC_TO_NODE and f.ric_message().HasField("control_request")
    ]
    assert [c.header.ue.ue_id for c in controls] == [number]
