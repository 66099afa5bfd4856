"""What a benchmark child process does: the runtime under test, the raw gRPC baselines, or
simulated E2 nodes that load them.

Each role is a coroutine ``role(args, commands)``; :mod:`ric.bench.proc` runs it in its own
process. Servers first answer ``{"port": N}``; node processes answer ``{"ready": n}`` once
every node is set up and subscribed. Then both serve commands until told to stop.

- ``runtime``: the real :class:`~ric.runtime.Runtime` with benchmark xApps (``Sink``,
  ``Reflex``), configured as ``ric run`` is but without per-xApp rate limits;
- ``raw_decode``: a bare ``grpc.aio`` server that answers E2 setup, asks for the same
  subscriptions, and then only parses each NodeMessage and turns its values into NumPy arrays;
- ``raw_echo``: the same, answering each indication with a ControlRequest for the UE it names
  (a raw gRPC echo round trip);
- ``nodes``: benchmark E2 nodes (one gRPC channel each) that blast, pace or periodically send
  prepared indication batches and time each control against the indication that caused it;
  given several endpoints (replicas) they fail over as ``ric sim --connect a,b`` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import gc
import itertools
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from ric._proto.e2.v1 import common_pb2, e2_pb2, kpm_pb2, rc_pb2
from ric.backoff import Backoff
from ric.bench import wire
from ric.bench.proc import Commands
from ric.bench.wire import NodeShape, Subscribed
from ric.e2node.association import SetupRefused, read_setup_answer
from ric.e2node.endpoints import Endpoints

__all__ = ["nodes", "raw_decode", "raw_echo", "runtime"]

METHOD = "/ric.e2.v1.E2Termination/Connect"
SERVICE = "ric.e2.v1.E2Termination"
_SERVER_OPTIONS = [
    ("grpc.so_reuseport", 0),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
]


def _shape(args: dict[str, Any]) -> NodeShape:
    raw = dict(args.get("shape") or {})
    for key in ("cell_metrics", "ue_metrics"):
        if key in raw:
            raw[key] = tuple(raw[key])
    return NodeShape(**raw)


# -- the runtime under test ------------------------------------------------------------------


class _LagProbe:
    """How late the event loop runs a 5 ms timer, and how long the cyclic garbage collector
    stops the process; ``read`` gives the figures since the previous read."""

    def __init__(self) -> None:
        self._fields: dict[str, float] = {}
        self._gc_start = 0.0
        self._reset()
        gc.callbacks.append(self._on_gc)

    def _reset(self) -> None:
        self._fields = dict.fromkeys(
            (
                "loop_lag_max_ms",
                "loop_stalls_over_10ms",
                "loop_stalls_over_100ms",
                "gc_pause_max_ms",
                "gc_pause_total_ms",
                "gc_gen2_collections",
            ),
            0.0,
        )

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_start = time.perf_counter()
            return
        f = self._fields
        ms = (time.perf_counter() - self._gc_start) * 1000.0
        f["gc_pause_total_ms"] += ms
        f["gc_pause_max_ms"] = max(f["gc_pause_max_ms"], ms)
        f["gc_gen2_collections"] += info["generation"] == 2

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            t = loop.time()
            await asyncio.sleep(0.005)
            lag = (loop.time() - t - 0.005) * 1000.0
            f = self._fields
            f["loop_lag_max_ms"] = max(f["loop_lag_max_ms"], lag)
            f["loop_stalls_over_10ms"] += lag > 10.0
            f["loop_stalls_over_100ms"] += lag > 100.0

    def read(self) -> dict[str, float]:
        out = {k: round(v, 2) for k, v in self._fields.items()}
        self._reset()
        return out


def _forwarding(rt: Any) -> dict[str, float]:
    """A replica's report forwarding counters (``ric_cluster_reports_*`` of its routing
    component, without the prefix: forwarded, received, dropped); none when not a replica."""
    routing = getattr(rt, "routing", None)
    if routing is None:
        return {}
    return {
        name.removeprefix("ric_cluster_"): float(value)
        for name, _kind, _help, _labels, value in routing.samples()
        if name.startswith("ric_cluster_reports_")
    }


async def runtime(args: dict[str, Any], commands: Commands) -> None:
    """The real runtime with the benchmark xApps ``args["xapps"]`` on a free loopback port,
    each hosted in ``args["isolation"]`` mode (loop, thread or process; default: the
    runtime's own default)."""
    from ric.bench.xapps import COUNTS_ENV

    with tempfile.TemporaryDirectory(prefix="ric-bench-counts-") as folder:
        # Set before the runtime starts: a process xApp's child inherits it and counts there.
        os.environ[COUNTS_ENV] = folder
        await _runtime(args, commands, Path(folder))


async def _runtime(args: dict[str, Any], commands: Commands, counts_dir: Path) -> None:
    from ric.bench.xapps import make_xapp, read_counts
    from ric.config import load_config
    from ric.plugins import Plugin, check_xapp
    from ric.runtime import Runtime, tune_gc
    from ric.subscriptions import SubscriptionState

    config = load_config(
        environ={},
        overrides={
            "e2.host": "127.0.0.1",
            "e2.port": 0,
            # As `ric run` has it (Prometheus sensor and HTTP server), on a free port.
            "http.port": 0,
            "http.enabled": bool(args.get("observability", True)),
            # At "info" every control is a log line; the bench measures the path, not stderr.
            "log.level": "warning",
            # The bench measures the path, not the per-xApp guards a deployment tunes.
            "xapps.max_controls_per_s": None,
            "xapps.max_subscriptions": None,
            # Ingest and the control loop drive one node far past a deployment's per-node rates
            # on purpose (the size and batch bounds stay on: the bench's messages are legal).
            "e2.max_values_per_s_per_node": None,
            "e2.max_indications_per_s_per_node": None,
            **({"xapps.isolation.default": args["isolation"]} if args.get("isolation") else {}),
            **dict(args.get("config") or {}),
        },
    )
    plugins = []
    for spec in args["xapps"]:
        cls = make_xapp(spec["kind"], spec["name"], spec["preset"])
        ref = f"{cls.__module__}:{cls.__qualname__}"
        plugins.append(Plugin(check_xapp(cls, ref), ref))
    profile_path = args.get("profile")
    profiler = cProfile.Profile() if profile_path else None

    probe = _LagProbe()
    # Built from the config as `ric run` builds it: metrics and HTTP, MQTT when enabled.
    runtime_cm = Runtime.from_config(config, plugins)
    async with runtime_cm as rt, asyncio.TaskGroup() as tg:
        tune_gc()  # as `ric run` does
        lag = tg.create_task(probe.run())
        commands.answer({"port": rt.port})

        async def handle(cmd: dict[str, Any]) -> dict[str, Any] | None:
            name = cmd["cmd"]
            if name == "stats":
                hosts = rt.hosts
                return {
                    "t": time.monotonic(),
                    "counts": read_counts(counts_dir),
                    "modes": {h.name: h.mode for h in hosts},
                    "states": {h.name: str(h.state) for h in hosts},
                    # The xApps' own processes (process mode), so the bench reads their /proc.
                    "xapp_pids": [p for h in hosts if (p := int(getattr(h, "pid", 0) or 0))],
                    "nodes": len(rt.sessions),
                    "active_subscriptions": sum(
                        1
                        for s in rt.subscriptions.snapshot()
                        if s.state is SubscriptionState.ACTIVE
                    ),
                    "delivered": sum(h.delivered for h in hosts),
                    "dropped": sum(h.dropped for h in hosts),
                    "restarts": sum(h.restarts for h in hosts),
                    "outbound_queued": sum(
                        getattr(getattr(x, "_outbound", None), "qsize", lambda: 0)()
                        for x in rt.sessions.values()
                    ),
                    "queued_reports": sum(h.queue_depth for h in hosts),
                    "controls_pending": rt.controls.pending,
                    "cluster_reports": _forwarding(rt),
                    **probe.read(),
                }
            if name == "cluster":
                # As one replica: the node leases it holds now, with their terms.
                cluster = rt.cluster
                return {
                    "t": time.monotonic(),
                    "replica": cluster.replica_id if cluster is not None else None,
                    "acting": cluster.acting if cluster is not None else False,
                    "leases": {
                        n: lease.term for n, lease in (cluster.leases if cluster else {}).items()
                    },
                }
            if name == "gc":
                # Experiments: how much of a stall is the cyclic garbage collector's?
                if cmd.get("freeze"):
                    gc.collect()
                    gc.freeze()
                if cmd.get("disable"):
                    gc.disable()
                if "threshold" in cmd:
                    gc.set_threshold(*cmd["threshold"])
                return {"counts": list(gc.get_count()), "frozen": gc.get_freeze_count()}
            if name == "profile_start" and profiler is not None:
                profiler.enable()
            elif name == "profile_stop" and profiler is not None:
                profiler.disable()
                profiler.dump_stats(str(profile_path))
            return None

        try:
            await commands.serve(handle)
        finally:
            lag.cancel()


# -- raw gRPC baselines ----------------------------------------------------------------------


def _subscription_requests(reports: list[dict[str, Any]]) -> list[bytes]:
    out = []
    for i, r in enumerate(reports, start=1):
        per = r.get("per", "cell")
        req = e2_pb2.SubscriptionRequest(
            request_id=common_pb2.RicRequestId(requestor=0, instance=i),
            ran_function_id=wire.KPM_FUNCTION_ID,
            kpm_trigger=kpm_pb2.KpmEventTrigger(reporting_period_ms=int(r.get("period_ms", 1000))),
            actions=[
                e2_pb2.Action(
                    action_id=1,
                    type=e2_pb2.ACTION_TYPE_REPORT,
                    kpm=kpm_pb2.KpmActionDefinition(
                        report_style=5 if per == "ue" else 1,
                        metric_names=r["metrics"],
                        granularity_period_ms=int(r.get("period_ms", 1000)),
                    ),
                )
            ],
        )
        out.append(e2_pb2.RicMessage(subscription_request=req).SerializeToString())
    return out


async def _raw(args: dict[str, Any], commands: Commands, *, echo: bool) -> None:
    """A bare grpc.aio E2 endpoint: setup, subscriptions, then decode (and echo) indications."""
    subscribe = _subscription_requests(list(args["reports"]))
    counts = {"messages": 0, "reports": 0, "values": 0, "streams": 0}
    instances = itertools.count(1)
    target = common_pb2.NrCgi(plmn=common_pb2.PlmnId(mcc="001", mnc="01"))

    async def connect(requests: Any, context: Any) -> None:
        first = await context.read()
        if first is grpc.aio.EOF:
            return
        setup = e2_pb2.NodeMessage.FromString(first).setup_request
        await context.write(
            e2_pb2.RicMessage(
                setup_response=e2_pb2.E2SetupResponse(
                    transaction_id=setup.transaction_id,
                    ric_id="raw",
                    accepted_ran_function_ids=[f.ran_function_id for f in setup.ran_functions],
                    keep_alive_interval_ms=setup.keep_alive_interval_ms,
                )
            ).SerializeToString()
        )
        for data in subscribe:
            await context.write(data)
        counts["streams"] += 1
        try:
            while True:
                data = await context.read()
                if data is grpc.aio.EOF:
                    return
                msg = e2_pb2.NodeMessage.FromString(data)
                counts["messages"] += 1
                if msg.WhichOneof("message") != "indications":
                    continue
                for ind in msg.indications.indications:
                    m = ind.kpm.matrix
                    values = np.array(m.values, dtype=np.float64).reshape(
                        len(m.entity_ids), len(m.metric_names)
                    )
                    counts["reports"] += 1
                    counts["values"] += values.size
                    if echo:
                        header = rc_pb2.RcControlHeader(style=3, action_id=1)
                        header.ue.ue_id = int(m.entity_ids[0])
                        body = rc_pb2.RcControlMessage()
                        body.handover.target_cell.CopyFrom(target)
                        request = e2_pb2.ControlRequest(
                            request_id=common_pb2.RicRequestId(
                                requestor=1, instance=next(instances)
                            ),
                            ran_function_id=wire.RC_FUNCTION_ID,
                            header=header,
                            message=body,
                            ack_requested=True,
                        )
                        await context.write(
                            e2_pb2.RicMessage(control_request=request).SerializeToString()
                        )
        finally:
            counts["streams"] -= 1

    server = grpc.aio.server(options=_SERVER_OPTIONS)
    handler: grpc.RpcMethodHandler[bytes, bytes] = grpc.stream_stream_rpc_method_handler(connect)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE, {"Connect": handler}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    probe = _LagProbe()
    lag = asyncio.get_running_loop().create_task(probe.run())
    commands.answer({"port": port})

    async def handle(cmd: dict[str, Any]) -> dict[str, Any] | None:
        if cmd["cmd"] == "stats":
            return {"t": time.monotonic(), **counts, **probe.read()}
        return None

    try:
        await commands.serve(handle)
    finally:
        lag.cancel()
        await server.stop(0.5)


async def raw_decode(args: dict[str, Any], commands: Commands) -> None:
    """The raw ingest baseline: parse NodeMessages and turn values into arrays, nothing else."""
    await _raw(args, commands, echo=False)


async def raw_echo(args: dict[str, Any], commands: Commands) -> None:
    """The raw round-trip baseline: answer each indication with a ControlRequest."""
    await _raw(args, commands, echo=True)


# -- benchmark E2 nodes ----------------------------------------------------------------------


class _Node:
    """One benchmark E2 node on its own gRPC channel.

    Given several RIC endpoints (the replicas of one RIC) it fails over as ``ric sim
    --connect a,b`` does (:class:`~ric.e2node.Endpoints`, capped back-off with jitter): when
    its association ends or its setup is refused it tries the next endpoint, and sets up and
    subscribes afresh there. With one endpoint an ended association ends the node and a
    refused setup is an error, as before."""

    def __init__(
        self,
        node_id: int,
        shape: NodeShape,
        targets: list[str],
        expected_subs: int,
        retry: tuple[float, float] = (0.05, 0.5),
        setup_timeout_s: float = 60.0,
    ) -> None:
        self.node_id = node_id
        self.shape = shape
        self.endpoints = Endpoints(targets)
        self.retry = retry
        """Back-off between association attempts: (first, cap) in seconds."""
        self.setup_timeout_s = setup_timeout_s
        """Longest wait for the answer to an E2 setup."""
        self.expected_subs = expected_subs
        self.subs: list[Subscribed] = []
        self.ready = asyncio.Event()
        self.out: asyncio.Queue[tuple[bytes, int]] = asyncio.Queue()
        self.blast: bytes | None = None
        self.blasting = False
        """Whether the node blasts: kept across associations (``blast`` is the batch of the
        present one's subscriptions, None until they are made)."""
        self.batch = b""
        self.template: e2_pb2.NodeMessage | None = None
        self.sent = 0
        self.sent_at: dict[int, float] = {}
        self.latencies: list[float] = []
        self.on_control: Callable[[], None] | None = None
        self.controls = 0
        self.setups = 0
        """E2 setups answered with a response (a failover adds one)."""
        self.ready_at = 0.0
        """Monotonic time the node last became subscribed (system-wide clock on Linux, so the
        bench runner can compare it with its own)."""

    @property
    def target(self) -> str:
        """The RIC endpoint the node uses (or tries next)."""
        return self.endpoints.current

    async def run(self, keep_alive_s: float) -> None:
        """Keep an association: one, or with several endpoints until cancelled."""
        if len(self.endpoints) == 1:
            try:
                await self._associate(keep_alive_s)
            except SetupRefused as exc:
                raise RuntimeError(f"node {self.node_id}: E2 setup refused: {exc}") from None
            return
        retry = Backoff(*self.retry, jitter=0.2)
        while True:
            setups = self.setups
            try:
                await self._associate(keep_alive_s)
            except SetupRefused as exc:  # the node's owner is alive elsewhere, for now
                self.endpoints.refused(exc.wait_s)
            except Exception:  # the association is gone, whatever ended it: try the next
                pass
            if self.setups > setups:
                retry.reset()
            delay = retry.next()
            self.endpoints.fail_over()
            await asyncio.sleep(self.endpoints.wait_s() or delay)

    async def _associate(self, keep_alive_s: float) -> None:
        """One association with the current endpoint: setup, then serve until it ends."""
        options = [
            # One TCP connection per node, as real base stations have.
            ("grpc.use_local_subchannel_pool", 1),
            ("grpc.max_receive_message_length", 64 * 1024 * 1024),
        ]
        # What the last association had in flight or queued died with it.
        self.ready.clear()
        self.subs = []
        self.blast = None
        self.out = asyncio.Queue()
        self.sent_at.clear()
        async with grpc.aio.insecure_channel(self.target, options=options) as channel:
            call: Any = channel.stream_stream(METHOD)()
            await call.write(wire.setup_request(self.node_id, self.shape))
            async with asyncio.timeout(self.setup_timeout_s):
                first = await call.read()
            read_setup_answer(
                e2_pb2.RicMessage.FromString(first) if isinstance(first, bytes) else first
            )
            self.setups += 1
            async with asyncio.TaskGroup() as tg:
                writer = tg.create_task(self._write_loop(call))
                keeper = tg.create_task(self._keep_alive(keep_alive_s))
                try:
                    await self._read_loop(call)
                finally:  # the stream ended: so does writing to it
                    writer.cancel()
                    keeper.cancel()

    async def _keep_alive(self, interval_s: float) -> None:
        seq = 0
        while True:
            await asyncio.sleep(interval_s)
            seq += 1
            msg = e2_pb2.NodeMessage(keep_alive=e2_pb2.KeepAlive(sequence=seq))
            self.out.put_nowait((msg.SerializeToString(), 0))

    async def _write_loop(self, call: Any) -> None:
        out = self.out
        sent_at = self.sent_at
        clock = time.perf_counter
        while True:
            blast = self.blast
            if blast is not None and out.empty():
                await call.write(blast)
                self.sent += 1
                continue
            data, seq = await out.get()
            if seq < 0:  # a wake-up: blasting was switched on
                continue
            if seq:
                sent_at[seq] = clock()
                self.sent += 1
            await call.write(data)

    async def _read_loop(self, call: Any) -> None:
        clock = time.perf_counter
        while True:
            data = await call.read()
            if data is grpc.aio.EOF:
                return
            now = clock()
            msg = e2_pb2.RicMessage.FromString(data)
            kind = msg.WhichOneof("message")
            if kind == "control_request":
                req = msg.control_request
                sent = self.sent_at.pop(req.header.ue.ue_id, None)
                if sent is not None:
                    self.latencies.append(now - sent)
                self.controls += 1
                self.out.put_nowait((wire.ack(req), 0))
                if self.on_control is not None:
                    self.on_control()
            elif kind == "subscription_request":
                answer, sub = wire.subscription_response(msg.subscription_request)
                self.subs.append(sub)
                self.out.put_nowait((answer, 0))
                if len(self.subs) >= self.expected_subs:
                    self._prepare()
                    self.ready.set()
            elif kind == "subscription_delete_request":
                req_del = msg.subscription_delete_request
                reply = e2_pb2.NodeMessage(
                    subscription_delete_response=e2_pb2.SubscriptionDeleteResponse(
                        request_id=req_del.request_id, ran_function_id=req_del.ran_function_id
                    )
                )
                self.out.put_nowait((reply.SerializeToString(), 0))

    def _prepare(self) -> None:
        subs = self.subs[: self.expected_subs]
        self.batch = wire.indication_batch(self.node_id, self.shape, subs).SerializeToString()
        self.template = wire.indication_batch(self.node_id, self.shape, subs[:1], ue_ids=["1"])
        self.ready_at = time.monotonic()
        if self.blasting:  # blasting across a failover: on with this association's batch
            self.blast = self.batch
            self.out.put_nowait((b"", -1))

    def stamped(self, seq: int) -> bytes:
        """The one-UE indication naming UE ``seq`` (the control that answers it names it too)."""
        assert self.template is not None
        self.template.indications.indications[0].kpm.matrix.entity_ids[0] = str(seq)
        return self.template.SerializeToString()


async def _paced(node: _Node, rate: float, duration_s: float, seqs: itertools.count[int]) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    k = 0
    n = max(1, round(rate * duration_s))
    while k < n:
        due = start + k / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        seq = next(seqs)
        node.out.put_nowait((node.stamped(seq), seq))
        k += 1


async def _window(node: _Node, window: int, duration_s: float, seqs: itertools.count[int]) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + duration_s
    done = asyncio.Event()

    def next_one() -> None:
        if loop.time() >= end:
            done.set()
            return
        seq = next(seqs)
        node.out.put_nowait((node.stamped(seq), seq))

    node.on_control = next_one
    try:
        for _ in range(window):
            next_one()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), duration_s + 5.0)
    finally:
        node.on_control = None


async def _periodic(node: _Node, period_s: float, phase_s: float) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time() + phase_s
    k = 0
    while True:
        delay = start + k * period_s - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if node.ready.is_set():  # between a failover and the new subscriptions: nothing
            node.out.put_nowait((node.batch, 0))
            node.sent += 1
        k += 1


async def nodes(args: dict[str, Any], commands: Commands) -> None:
    """Benchmark E2 nodes ``args["node_ids"]`` against ``args["target"]``, or against the
    endpoints ``args["targets"]`` with failover (``args["retry_s"]``: first and cap of the
    back-off between attempts)."""
    shape = _shape(args)
    expected = int(args.get("expected_subs", 1))
    targets = list(args.get("targets") or [args["target"]])
    retry = tuple(args.get("retry_s") or (0.05, 0.5))
    setup_timeout_s = float(args.get("setup_timeout_s", 60.0))
    all_nodes = [
        _Node(n, shape, targets, expected, (float(retry[0]), float(retry[1])), setup_timeout_s)
        for n in args["node_ids"]
    ]
    keep_alive_s = float(args.get("keep_alive_s", 5.0))
    seqs = itertools.count(1)
    loads: list[asyncio.Task[None]] = []

    async with asyncio.TaskGroup() as tg:
        runs = [tg.create_task(n.run(keep_alive_s)) for n in all_nodes]
        try:
            async with asyncio.timeout(setup_timeout_s):
                await asyncio.gather(*(n.ready.wait() for n in all_nodes))
        except TimeoutError:
            ready = sum(n.ready.is_set() for n in all_nodes)
            raise RuntimeError(
                f"only {ready} of {len(all_nodes)} nodes set up and subscribed in time"
            ) from None
        commands.answer({"ready": len(all_nodes)})

        def stop_loads() -> None:
            for task in loads:
                task.cancel()
            loads.clear()
            for n in all_nodes:
                n.blasting = False
                n.blast = None

        async def run_phase(cmd: dict[str, Any]) -> dict[str, Any]:
            node = all_nodes[0]
            node.latencies = []
            node.sent_at.clear()
            sent0 = node.sent
            t0 = time.perf_counter()
            duration = float(cmd["duration_s"])
            if cmd["mode"] == "paced":
                await _paced(node, float(cmd["rate"]), duration, seqs)
            else:
                await _window(node, int(cmd.get("window", 8)), duration, seqs)
            elapsed = time.perf_counter() - t0
            # Let the last answers arrive before counting the lost ones.
            for _ in range(100):
                if not node.sent_at:
                    break
                await asyncio.sleep(0.01)
            return {
                "sent": node.sent - sent0,
                "completed": len(node.latencies),
                "lost": len(node.sent_at),
                "elapsed_s": elapsed,
                "latencies_us": [round(x * 1e6, 1) for x in node.latencies],
            }

        async def handle(cmd: dict[str, Any]) -> dict[str, Any] | None:
            name = cmd["cmd"]
            if name == "run":
                return await run_phase(cmd)
            if name == "start":
                stop_loads()
                if cmd["mode"] == "blast":
                    for n in all_nodes:
                        n.blasting = True
                        n.blast = n.batch if n.ready.is_set() else None
                        n.out.put_nowait((b"", -1))
                else:
                    period = float(cmd.get("period_s", 1.0))
                    offset = float(cmd.get("phase_offset", 0.0))
                    total = max(1, int(cmd.get("total_nodes", len(all_nodes))))
                    for i, n in enumerate(all_nodes):
                        phase = ((offset + i) % total) * period / total
                        loads.append(tg.create_task(_periodic(n, period, phase)))
                return None
            if name == "halt":
                stop_loads()
                return None
            if name == "stats":
                return {"t": time.monotonic(), "sent": sum(n.sent for n in all_nodes)}
            if name == "associations":
                # Failover: where each node is, how often it set up, when it was last ready.
                return {
                    "t": time.monotonic(),
                    "nodes": [
                        {
                            "node_id": n.node_id,
                            "target": n.target,
                            "setups": n.setups,
                            "ready": n.ready.is_set(),
                            "ready_at": n.ready_at,
                        }
                        for n in all_nodes
                    ],
                }
            if name == "stop":
                stop_loads()
                for task in runs:
                    task.cancel()
            return None

        try:
            await commands.serve(handle)
        finally:
            stop_loads()
            for task in runs:
                task.cancel()
