"""The simulator: one world, one E2 node agent per scenario node, a real-time tick.

::

    sim = Simulator(load_scenario("seeds/demo.toml"), "127.0.0.1:36421")
    async with sim:                 # starts the nodes and the tick in the background
        await sim.wait_ready()      # every node has completed E2 setup
        ...
    # or, until cancelled or for the scenario's duration:
    await sim.run()
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import grpc

from ric.e2node import Endpoints
from ric.errors import ConfigError, StateError
from ric.ids import NodeId, NodeType, Plmn
from ric.sim.agent import DEFAULT_KEEP_ALIVE_MS, NodeAgent
from ric.sim.scenario import Scenario
from ric.sim.world import World

__all__ = ["Simulator", "run_sim"]

log = logging.getLogger(__name__)

MAX_LAG_TICKS = 10
"""Ticks the clock may fall behind real time before it gives up catching up."""


class _State(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    DONE = "done"


class Simulator:
    """Simulated E2 nodes of a scenario, connected to the RIC's E2 termination at ``target``.

    ``target`` is "host:port", or several (a sequence, or comma-separated): every node connects
    to the first and fails over to the next, round robin, when its association is lost or its
    setup fails (:class:`~ric.e2node.Endpoints`). ``duration_s`` (default: the scenario's)
    stops the run after that many simulated seconds; ``seed`` overrides the scenario's seed;
    ``nodes`` runs only those node ids (the world still holds the whole scenario, so several
    processes can share one scenario; their worlds diverge once controls arrive).

    Use :meth:`run` as a task, or ``async with`` to run it in the background; a simulator
    runs once.
    """

    def __init__(
        self,
        scenario: Scenario,
        target: str | Sequence[str],
        *,
        duration_s: float | None = None,
        seed: int | None = None,
        nodes: Sequence[int] | None = None,
        keep_alive_interval_ms: int = DEFAULT_KEEP_ALIVE_MS,
        reconnect_initial_s: float = 0.5,
        reconnect_max_s: float = 30.0,
        tls_ca: Path | None = None,
        tls_dir: Path | None = None,
    ) -> None:
        known = [n.id for n in scenario.nodes]
        selected = list(known if nodes is None else nodes)
        unknown = sorted(set(selected) - set(known))
        if unknown:
            raise ConfigError(
                "nodes",
                f"node ids {unknown} are not in scenario {scenario.name!r} (it has {known})",
            )
        if not selected:
            raise ConfigError("nodes", "no nodes selected")
        if duration_s is not None and not duration_s > 0:
            raise ConfigError("duration_s", f"must be > 0 seconds, got {duration_s}")
        try:
            endpoints = Endpoints.parse(target) if isinstance(target, str) else Endpoints(target)
        except ValueError as exc:
            raise ConfigError("connect", str(exc)) from None
        self.scenario = scenario
        self.targets = endpoints.targets
        """The RIC endpoints the nodes fail over between, first first."""
        self.target = ",".join(self.targets)
        self.duration_s = duration_s if duration_s is not None else scenario.duration_s
        self.world = World(scenario, seed=seed)
        self.agents: dict[int, NodeAgent] = {
            n: NodeAgent(
                self.world,
                n,
                self.targets,
                keep_alive_interval_ms=keep_alive_interval_ms,
                reconnect_initial_s=reconnect_initial_s,
                reconnect_max_s=reconnect_max_s,
                credentials=_credentials(scenario, n, tls_ca, tls_dir),
            )
            for n in dict.fromkeys(selected)
        }
        self.ticks = 0
        """World steps taken so far."""
        self._state = _State.NEW
        self._tg: asyncio.TaskGroup | None = None
        self._task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"Simulator({self.scenario.name!r}, {self.target!r}, nodes={list(self.agents)})"

    @property
    def all_ready(self) -> bool:
        """True while every node has a live, set-up E2 association."""
        return all(a.ready.is_set() for a in self.agents.values())

    async def wait_ready(self) -> None:
        """Wait until every node has a live, set-up E2 association at the same time."""
        while True:
            pending = [a for a in self.agents.values() if not a.ready.is_set()]
            if not pending:
                return
            await pending[0].ready.wait()

    async def run(self) -> None:
        """Run the nodes and the tick until cancelled or until ``duration_s`` has passed."""
        if self._state is not _State.NEW:
            raise StateError(f"{self!r} has already run; build a new Simulator")
        self._state = _State.RUNNING
        epoch_ms = int(time.time() * 1000)
        for agent in self.agents.values():
            agent.epoch_unix_ms = epoch_ms
        log.info(
            "simulating %s: %d nodes, %d cells, %d UEs, RIC at %s",
            self.scenario.name,
            len(self.agents),
            self.world.n_cells,
            self.world.n_ues,
            self.target,
        )
        try:
            async with asyncio.TaskGroup() as tg:
                tasks = [
                    tg.create_task(a.run(), name=f"sim-node-{n}") for n, a in self.agents.items()
                ]
                try:
                    await self._tick_loop()
                finally:
                    for task in tasks:
                        task.cancel()
        finally:
            self._state = _State.DONE
        log.info(
            "simulation %s ended after %.1f simulated s", self.scenario.name, self.world.time_s
        )

    async def _tick_loop(self) -> None:
        loop = asyncio.get_running_loop()
        tick_s = self.scenario.tick_ms / 1000.0
        last = math.inf if self.duration_s is None else math.ceil(self.duration_s / tick_s - 1e-9)
        start = loop.time()
        k = 0
        while k < last:
            k += 1
            delay = start + k * tick_s - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                if -delay > MAX_LAG_TICKS * tick_s:
                    log.warning("simulator %.2f s behind real time; skipping ahead", -delay)
                    start = loop.time() - k * tick_s
                await asyncio.sleep(0)
            self.world.step(tick_s)
            self.ticks = k
            for agent in self.agents.values():
                try:
                    agent.on_tick()
                except Exception:  # one node's reporting bug must not stop the others
                    log.exception("%r: reporting failed at t=%.1f s", agent, self.world.time_s)

    async def __aenter__(self) -> Simulator:
        if self._state is not _State.NEW or self._tg is not None:
            raise StateError(f"{self!r} has already run; build a new Simulator")
        tg = asyncio.TaskGroup()
        await tg.__aenter__()
        self._tg = tg
        self._task = tg.create_task(self.run(), name="simulator")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        if self._tg is None or self._task is None:
            raise StateError(f"{self!r} was not entered")
        self._task.cancel()
        await self._tg.__aexit__(exc_type, exc, tb)
        return None


def _credentials(
    scenario: Scenario, node: int, ca: Path | None, folder: Path | None
) -> grpc.ChannelCredentials | None:
    """TLS credentials of one node: the RIC's CA, and with ``folder`` the node's certificate
    and key (``<node id>.pem`` / ``.key``, as ``ric certs`` writes them)."""
    if ca is None:
        if folder is not None:
            raise ConfigError("--tls-dir", "node certificates need the RIC's CA too (--tls-ca)")
        return None
    node_id = str(NodeId(Plmn(scenario.plmn.mcc, scenario.plmn.mnc), node, NodeType.GNB))
    try:
        root = ca.read_bytes()
        if folder is None:
            return grpc.ssl_channel_credentials(root_certificates=root)
        cert = (folder / f"{node_id}.pem").read_bytes()
        key = (folder / f"{node_id}.key").read_bytes()
    except OSError as exc:
        raise ConfigError("--tls-dir", f"cannot read TLS file for node {node_id}: {exc}") from None
    return grpc.ssl_channel_credentials(
        root_certificates=root, private_key=key, certificate_chain=cert
    )


async def run_sim(
    scenario: Scenario,
    target: str | Sequence[str],
    *,
    duration_s: float | None = None,
    seed: int | None = None,
    nodes: Sequence[int] | None = None,
    tls_ca: Path | None = None,
    tls_dir: Path | None = None,
) -> None:
    """Run ``scenario``'s nodes against the RIC at ``target`` (``HOST:PORT``, or several to fail
    over between) until cancelled or ``duration_s``.

    ``duration_s`` defaults to the scenario's (none: run until cancelled); ``seed`` overrides
    the scenario's seed; ``nodes`` runs only those node ids. With ``tls_ca`` the nodes connect
    over TLS (verifying the RIC's certificate); with ``tls_dir`` too they present their own
    certificates. ConfigError for unknown nodes or unreadable TLS files.
    """
    await Simulator(
        scenario,
        target,
        duration_s=duration_s,
        seed=seed,
        nodes=nodes,
        tls_ca=tls_ca,
        tls_dir=tls_dir,
    ).run()
