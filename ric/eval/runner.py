"""Run a scenario without and with a set of xApps, seed by seed, on the virtual clock."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ric.config import RuntimeConfig
from ric.eval.metrics import RunMetrics, TickRecorder
from ric.plugins import Plugin, configure, load
from ric.sim.scenario import Scenario, load_scenario
from ric.trace.harness import XAppSpec, run_scenario

__all__ = ["DEFAULT_DURATION_S", "Evaluation", "RunResult", "evaluate"]

DEFAULT_DURATION_S = 300.0
"""How long each run lasts when neither the caller nor the scenario says, virtual seconds."""

Variant = Literal["baseline", "xapps"]


@dataclass(frozen=True)
class RunResult:
    """One run: its seed, whether the xApps ran, its figures and its wall-clock time."""

    seed: int
    variant: Variant
    metrics: RunMetrics
    wall_s: float


@dataclass
class Evaluation:
    """Every run of an evaluation, baseline and with xApps for each seed, and its settings."""

    scenario: Scenario
    source: str
    """Where the scenario came from (its path, or its name)."""
    xapps: tuple[str, ...]
    seeds: tuple[int, ...]
    duration_s: float
    conflict_policy: str
    xapp_config: dict[str, dict[str, Any]]
    runs: list[RunResult] = field(default_factory=list)
    wall_s: float = 0.0

    def run(self, seed: int, variant: Variant) -> RunResult:
        """The run of ``seed`` and ``variant``; KeyError if there is none."""
        for r in self.runs:
            if r.seed == seed and r.variant == variant:
                return r
        raise KeyError((seed, variant))


def _plugins(xapps: Sequence[XAppSpec]) -> list[XAppSpec]:
    """Load names up front, so that a bad name fails before any run."""
    return [load(x) if isinstance(x, str) else x for x in xapps]


def _name(spec: XAppSpec) -> str:
    if isinstance(spec, Plugin):
        return spec.name
    if isinstance(spec, str):
        return spec
    return spec.name


async def evaluate(
    scenario: str | Path | Scenario,
    xapps: Sequence[XAppSpec],
    *,
    seeds: Sequence[int] = (1, 2, 3),
    duration_s: float | None = None,
    config: RuntimeConfig | None = None,
    xapp_config: Mapping[str, Mapping[str, Any]] | None = None,
    progress: Callable[[str], None] | None = None,
) -> Evaluation:
    """For each seed, run ``scenario`` for ``duration_s`` virtual seconds with no xApp at
    all, then with ``xapps``, measuring both from the world's ground truth every tick.

    ``duration_s`` defaults to the scenario's ``duration_s``, else
    :data:`DEFAULT_DURATION_S`. ``config`` is the runtime configuration (the conflict
    policy, priorities and windows come from its ``[conflicts]``); ``xapp_config`` gives
    xApps their settings by name. ``progress`` is told of each run as it ends.
    """
    if not seeds:
        raise ValueError("at least one seed is needed")
    source = scenario.name if isinstance(scenario, Scenario) else str(scenario)
    spec = scenario if isinstance(scenario, Scenario) else _load(scenario)
    plugins = _plugins(xapps)
    for plugin in plugins:  # bad settings fail here, before any run
        if isinstance(plugin, Plugin) and xapp_config and plugin.name in xapp_config:
            configure(plugin.cls, dict(xapp_config[plugin.name]))
    duration = duration_s or spec.duration_s or DEFAULT_DURATION_S
    policy = (config.conflicts.policy if config is not None else None) or "first-wins"
    result = Evaluation(
        scenario=spec,
        source=source,
        xapps=tuple(_name(p) for p in plugins),
        seeds=tuple(seeds),
        duration_s=duration,
        conflict_policy=policy,
        xapp_config={k: dict(v) for k, v in (xapp_config or {}).items()},
    )
    started = time.perf_counter()
    variants: tuple[tuple[Variant, list[XAppSpec]], ...] = (("baseline", []), ("xapps", plugins))
    for seed in seeds:
        for variant, chosen in variants:
            recorder = TickRecorder(spec)
            t0 = time.perf_counter()
            run = await run_scenario(
                spec,
                chosen,
                duration_s=duration,
                seed=seed,
                config=config,
                xapp_config=xapp_config if chosen else None,
                on_tick=recorder,
            )
            assert run.world is not None
            metrics = recorder.finish(run.controls, run.world.mobility_report())
            wall = time.perf_counter() - t0
            result.runs.append(RunResult(seed, variant, metrics, wall))
            if progress is not None:
                progress(f"seed {seed} {variant}: {duration:.0f} s simulated in {wall:.2f} s")
    result.wall_s = time.perf_counter() - started
    return result


def _load(path: str | Path) -> Scenario:
    p = Path(path)
    if not p.exists():
        repo = Path(__file__).resolve().parents[2] / p
        if repo.exists():
            p = repo
    return load_scenario(p)
