"""Precision and recall of the anomaly detector against the events a scenario injects.

::

    python -m anomaly.evaluate seeds/faults.toml --seeds 1,2,3 --duration 600 [--format json]

Each seed runs the scenario with the detector on the virtual clock (``ric.testing``) and reads
the ground truth from the simulated world at every tick: the cells each event affects are the
cell a ``sinr_degradation`` or a cell ``traffic_surge`` names, and, for a group
``traffic_surge``, the cells serving that group's UEs when the event starts.

- an alert is **true** when it is on an affected cell of some event, between the event's start
  and its end plus ``grace_s``; **precision** = true alerts / alerts;
- an event is **recalled** when some true alert hits it; **recall** = recalled / events;
- the **delay** of a recalled event is the time from its start to its first true alert.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from anomaly import Alert, AnomalyDetector
from ric.sim.scenario import Scenario, SinrDegradation, load_scenario
from ric.sim.world import World
from ric.testing import run_scenario

__all__ = ["EventTruth", "Score", "TruthRecorder", "evaluate", "main", "score"]

START_UNIX_S = 1_700_000_000.0
"""Where the harness' virtual wall clock starts: alert times minus this are run seconds."""


@dataclass(frozen=True, slots=True)
class EventTruth:
    """One injected event: its kind, its window in run seconds, and the cells it affects."""

    index: int
    kind: str
    start_s: float
    end_s: float
    cells: frozenset[str]


@dataclass(frozen=True, slots=True)
class Score:
    """How the alerts of one run match the injected events."""

    alerts: int
    true_alerts: int
    events: int
    recalled: int
    delays_s: tuple[float, ...]
    """Start of each recalled event to its first true alert, seconds."""
    missed: tuple[int, ...] = field(default=())
    """Indices of the events no true alert hit."""

    @property
    def precision(self) -> float:
        """True alerts / alerts (NaN without alerts)."""
        return self.true_alerts / self.alerts if self.alerts else math.nan

    @property
    def recall(self) -> float:
        """Recalled events / events (NaN without events)."""
        return self.recalled / self.events if self.events else math.nan


class TruthRecorder:
    """An ``on_tick`` observer that notes, for each event, the cells it affects when it
    starts."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.cells: dict[int, frozenset[str]] = {}
        groups: dict[str, list[int]] = {}
        first = 0
        for group in scenario.ue_groups:
            groups.setdefault(group.name, []).extend(range(first, first + group.count))
            first += group.count
        self._group_ues = {name: np.asarray(ues, dtype=np.int64) for name, ues in groups.items()}
        self.end_s = 0.0

    def __call__(self, world: World) -> None:
        self.end_s = world.time_s
        for i, event in enumerate(self.scenario.events):
            if i in self.cells or world.time_s < event.at_s:
                continue
            group = getattr(event, "group", None)
            if isinstance(event, SinrDegradation) or group is None:
                assert event.cell is not None
                self.cells[i] = frozenset({event.cell})
                continue
            serving = world.serving[self._group_ues[group]]
            self.cells[i] = frozenset(world.cell_text[c] for c in serving.tolist() if c >= 0)

    def events(self) -> list[EventTruth]:
        """The events that started during the run, with their affected cells."""
        out = []
        for i, event in enumerate(self.scenario.events):
            if i not in self.cells:
                continue
            end = self.end_s if event.until_s is None else min(event.until_s, self.end_s)
            out.append(EventTruth(i, event.kind, event.at_s, end, self.cells[i]))
        return out


def score(
    alerts: Sequence[Alert],
    events: Sequence[EventTruth],
    *,
    grace_s: float = 15.0,
    start_unix_s: float = START_UNIX_S,
) -> Score:
    """Match ``alerts`` against ``events`` (see the module docstring)."""
    true = 0
    first: dict[int, float] = {}
    for alert in alerts:
        t = alert.at - start_unix_s
        hits = [e for e in events if alert.cell in e.cells and e.start_s <= t <= e.end_s + grace_s]
        if hits:
            true += 1
        for e in hits:
            first[e.index] = min(first.get(e.index, math.inf), t - e.start_s)
    return Score(
        alerts=len(alerts),
        true_alerts=true,
        events=len(events),
        recalled=len(first),
        delays_s=tuple(first[i] for i in sorted(first)),
        missed=tuple(e.index for e in events if e.index not in first),
    )


async def run_one(
    scenario: Scenario,
    seed: int,
    duration_s: float,
    config: Mapping[str, Any] | None = None,
    grace_s: float = 15.0,
) -> tuple[Score, list[Alert], list[EventTruth]]:
    """Run the detector on ``scenario`` with ``seed``; its score, alerts and the truth."""
    truth = TruthRecorder(scenario)
    result = await run_scenario(
        scenario,
        [AnomalyDetector],
        duration_s=duration_s,
        seed=seed,
        xapp_config={"anomaly": dict(config or {})},
        on_tick=truth,
        start_unix_s=START_UNIX_S,
    )
    app = result.xapps["anomaly"]
    assert isinstance(app, AnomalyDetector)
    events = truth.events()
    return score(app.alerts, events, grace_s=grace_s), list(app.alerts), events


async def evaluate(
    scenario: str | Path | Scenario,
    seeds: Sequence[int],
    duration_s: float,
    config: Mapping[str, Any] | None = None,
    grace_s: float = 15.0,
) -> dict[int, Score]:
    """Score the detector over several seeds."""
    spec = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    out = {}
    for seed in seeds:
        out[seed] = (await run_one(spec, seed, duration_s, config, grace_s))[0]
    return out


def _table(scores: Mapping[int, Score]) -> str:
    lines = ["seed  alerts  true  precision  events  recalled  recall  mean delay (s)"]
    for seed, s in scores.items():
        delay = sum(s.delays_s) / len(s.delays_s) if s.delays_s else math.nan
        lines.append(
            f"{seed:>4}  {s.alerts:>6}  {s.true_alerts:>4}  {s.precision:>9.2f}  {s.events:>6}"
            f"  {s.recalled:>8}  {s.recall:>6.2f}  {delay:>14.1f}"
        )
    alerts = sum(s.alerts for s in scores.values())
    true = sum(s.true_alerts for s in scores.values())
    events = sum(s.events for s in scores.values())
    recalled = sum(s.recalled for s in scores.values())
    lines.append(
        f"all   {alerts:>6}  {true:>4}  {true / alerts if alerts else math.nan:>9.2f}  "
        f"{events:>6}  {recalled:>8}  {recalled / events if events else math.nan:>6.2f}"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: score the detector on a scenario over several seeds."""
    parser = argparse.ArgumentParser(
        prog="python -m anomaly.evaluate",
        description="Precision and recall of the anomaly xApp against a scenario's events.",
    )
    parser.add_argument("scenario", help="a scenario file with [[events]], e.g. seeds/faults.toml")
    parser.add_argument("--seeds", default="1,2,3", help="comma-separated seeds (default 1,2,3)")
    parser.add_argument("--duration", type=float, default=600.0, help="virtual seconds per run")
    parser.add_argument("--grace", type=float, default=15.0, help="seconds after an event's end")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    scores = asyncio.run(evaluate(args.scenario, seeds, args.duration, grace_s=args.grace))
    if args.format == "json":
        body = {
            str(seed): {**asdict(s), "precision": s.precision, "recall": s.recall}
            for seed, s in scores.items()
        }
        json.dump(body, sys.stdout, indent=2, default=lambda v: None)
        sys.stdout.write("\n")
    else:
        print(_table(scores))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
