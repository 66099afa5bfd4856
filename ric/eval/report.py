"""What ``ric eval`` prints: per-run figures, their summary over seeds, and the noise test.

The difference of a figure is taken per seed (with xApps minus baseline: the same seed gives
both runs the same UEs, paths and traffic), then summarised as mean, standard error and a 95 %
confidence half-width ``t(0.975, n-1) * stderr`` (Student's t, two-sided). A difference is
**beyond noise** when its mean is larger in size than that half-width, i.e. a paired t-test
rejects "no effect" at the 5 % level; when every seed gives the same difference (stderr 0),
any non-zero difference is. One seed cannot tell (``null`` / ``n/a``).

JSON document (``--format json``), stable keys::

    {
      "schema": "ric.eval/1",
      "scenario": {"name", "source", "tick_ms", "cells", "ues", "events", "ran",
                   "scheduler"},
      "ran_mobility": str,                     # the RAN mobility model, one line
      "scheduler": str,                        # the scheduler and traffic models, one line
      "xapps": [names], "seeds": [ints], "duration_s": float,
      "conflict_policy": str, "xapp_config": {xapp: {key: value}},
      "ping_pong_window_s": float, "noise_test": str,
      "wall_s": float,                         # all runs, measured
      "metrics": {key: {"label", "unit"}},     # the figures below, described
      "runs": [{"seed", "variant": "baseline"|"xapps", "wall_s",
                "metrics": {key: value},
                "controls_by_outcome": {outcome: n}, "controls_by_xapp": {xapp: {outcome: n}}}],
      "summary": {key: {"baseline": {"mean", "std", "min", "max"},
                        "xapps": {"mean", "std", "min", "max"},
                        "diff": {"mean", "stderr", "ci95", "beyond_noise": bool|null}}},
      "plot": path | null
    }

Metric keys: ``ue_thp_dl_mean_kbps``, ``ue_thp_dl_p5_kbps``, ``prb_util_peak_pct``,
``prb_util_p95_pct``, ``prb_util_busiest_cell_mean_pct``, ``sla_violation_ue_s``,
``unattached_ue_s``, ``handovers``, ``handovers_a3``, ``handovers_xapp``,
``handovers_cell_off``, ``ping_pongs``, ``rlf``, ``handover_failures``, ``too_late``,
``too_early``, ``wrong_cell``, ``outage_ue_s``, ``interruption_ms_per_ue``,
``active_cell_hours``, ``energy_kwh``, ``controls``, ``conflicts``, ``conflicts_refused``,
and per slice ``slice.<S-NSSAI>.ue_thp_dl_mean_kbps`` / ``.ue_thp_dl_p5_kbps`` and, for slices with an SLA,
``.sla_violation_ue_s`` / ``.sla_violation_pct``. NaN (no sample) is written as ``null``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from ric.cliutil import table
from ric.eval.metrics import PING_PONG_WINDOW_S
from ric.eval.runner import Evaluation
from ric.sim.scenario import Scenario

__all__ = [
    "NOISE_TEST",
    "Comparison",
    "Spread",
    "compare",
    "ran_model",
    "render_table",
    "scheduler_model",
    "summarise",
    "to_json",
]

# Student's t, 97.5 % quantile, by degrees of freedom; 2.0 beyond (a shade above 1.96).
_T975: Final = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip

NOISE_TEST: Final = (
    "paired by seed: beyond noise when |mean difference| > t(0.975, n-1) x its standard error "
    "(two-sided paired t-test at 5 %); needs 2 or more seeds"
)

_LABELS: Final[dict[str, tuple[str, str, float]]] = {
    # key: (label, unit shown in the table, scale from the key's unit to the shown one)
    "ue_thp_dl_mean_kbps": ("UE DL throughput, mean", "Mbit/s", 1e-3),
    "ue_thp_dl_p5_kbps": ("UE DL throughput, 5th pct", "Mbit/s", 1e-3),
    "prb_util_peak_pct": ("cell PRB use, peak", "%", 1.0),
    "prb_util_p95_pct": ("cell PRB use, 95th pct", "%", 1.0),
    "prb_util_busiest_cell_mean_pct": ("busiest cell PRB use, mean", "%", 1.0),
    "sla_violation_ue_s": ("slice SLA violations", "UE-s", 1.0),
    "unattached_ue_s": ("UEs without a cell", "UE-s", 1.0),
    "handovers": ("handovers, all causes", "", 1.0),
    "handovers_a3": ("handovers by the RAN (A3)", "", 1.0),
    "handovers_xapp": ("handovers by xApp control", "", 1.0),
    "handovers_cell_off": ("handovers: cell switched off", "", 1.0),
    "ping_pongs": (f"ping-pongs, all handovers (<= {PING_PONG_WINDOW_S:g} s)", "", 1.0),
    "rlf": ("radio link failures (T310, failed HO)", "", 1.0),
    "handover_failures": ("handover executions failed", "", 1.0),
    "too_late": ("failures: too late", "", 1.0),
    "too_early": ("failures: too early", "", 1.0),
    "wrong_cell": ("failures: wrong cell", "", 1.0),
    "outage_ue_s": ("outage (out of sync, re-establishing)", "UE-s", 1.0),
    "interruption_ms_per_ue": ("handover interruption per UE", "ms", 1.0),
    "active_cell_hours": ("active cell-hours", "h", 1.0),
    "energy_kwh": ("energy, all cells", "kWh", 1.0),
    "controls": ("controls sent", "", 1.0),
    "conflicts": ("conflicts (arbiter)", "", 1.0),
    "conflicts_refused": ("controls refused: conflict", "", 1.0),
}
_KEY_UNITS: Final = {
    "kbps": "kbit/s",
    "pct": "%",
    "ue_s": "UE-s",
    "hours": "h",
    "kwh": "kWh",
    "ms_per_ue": "ms",
}


def _describe(key: str) -> tuple[str, str, float]:
    if key in _LABELS:
        return _LABELS[key]
    _, sid, base = key.split(".", 2)
    label, unit, scale = _LABELS.get(base, (base, "", 1.0))
    if base == "sla_violation_ue_s":
        label = "SLA violations"
    if base == "sla_violation_pct":
        label, unit, scale = "SLA violations", "% of UE-s", 1.0
    return f"slice {sid}: {label}", unit, scale


def _key_unit(key: str) -> str:
    for suffix, unit in _KEY_UNITS.items():
        if key.endswith(suffix):
            return unit
    return "count"


@dataclass(frozen=True)
class Spread:
    """Mean, sample standard deviation (0 for one value), minimum and maximum."""

    mean: float
    std: float
    min: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        """The spread of ``values`` (NaNs left out; all NaN if nothing is left)."""
        arr = np.asarray([v for v in values if not math.isnan(v)], dtype=np.float64)
        if arr.size == 0:
            return cls(math.nan, math.nan, math.nan, math.nan)
        std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
        return cls(float(arr.mean()), std, float(arr.min()), float(arr.max()))


@dataclass(frozen=True)
class Comparison:
    """A figure over seeds: baseline, with xApps, and their paired difference."""

    baseline: Spread
    xapps: Spread
    diff_mean: float
    diff_stderr: float
    ci95: float
    """Half-width of the 95 % confidence interval of the mean difference."""
    beyond_noise: bool | None
    """None when fewer than two seeds have the figure."""


def _t975(df: int) -> float:
    return _T975[df - 1] if df <= len(_T975) else 2.0


def compare(baseline: Sequence[float], xapps: Sequence[float]) -> Comparison:
    """Compare per-seed values (same order of seeds) with the paired test of this module."""
    pairs = [
        (b, x) for b, x in zip(baseline, xapps, strict=True) if not (math.isnan(b) or math.isnan(x))
    ]
    # Differences within float rounding of the values are no difference.
    diffs = np.asarray(
        [0.0 if abs(x - b) <= 1e-9 * max(1.0, abs(b), abs(x)) else x - b for b, x in pairs],
        dtype=np.float64,
    )
    n = diffs.size
    mean = float(diffs.mean()) if n else math.nan
    if n < 2:
        stderr = ci = math.nan
        beyond: bool | None = None
    else:
        stderr = float(diffs.std(ddof=1)) / math.sqrt(n)
        ci = _t975(n - 1) * stderr
        beyond = abs(mean) > ci if stderr > 0.0 else mean != 0.0
    return Comparison(Spread.of(baseline), Spread.of(xapps), mean, stderr, ci, beyond)


def _keys(ev: Evaluation) -> list[str]:
    keys: list[str] = []
    for run in ev.runs:
        for key in run.metrics.scalars():
            if key not in keys:
                keys.append(key)
    return keys


def summarise(ev: Evaluation) -> dict[str, Comparison]:
    """Every figure of the evaluation compared over its seeds."""
    out: dict[str, Comparison] = {}
    for key in _keys(ev):
        base = [ev.run(s, "baseline").metrics.scalars().get(key, math.nan) for s in ev.seeds]
        with_x = [ev.run(s, "xapps").metrics.scalars().get(key, math.nan) for s in ev.seeds]
        out[key] = compare(base, with_x)
    return out


def _num(value: float) -> float | None:
    return None if math.isnan(value) else value


def to_json(ev: Evaluation, plot: str | None = None) -> dict[str, Any]:
    """The machine-readable document of the module docstring."""
    sc = ev.scenario
    keys = _keys(ev)
    summary = summarise(ev)

    def spread(s: Any) -> dict[str, float | None]:
        return {k: _num(getattr(s, k)) for k in ("mean", "std", "min", "max")}

    return {
        "schema": "ric.eval/1",
        "scenario": {
            "name": sc.name,
            "source": ev.source,
            "tick_ms": sc.tick_ms,
            "cells": sum(n.sectors for n in sc.nodes),
            "ues": sc.ue_count,
            "events": [e.model_dump() for e in sc.events],
            "ran": sc.ran.model_dump(),
            "scheduler": sc.scheduler.model_dump(),
        },
        "ran_mobility": ran_model(sc),
        "scheduler": scheduler_model(sc),
        "xapps": list(ev.xapps),
        "seeds": list(ev.seeds),
        "duration_s": ev.duration_s,
        "conflict_policy": ev.conflict_policy,
        "xapp_config": ev.xapp_config,
        "ping_pong_window_s": PING_PONG_WINDOW_S,
        "noise_test": NOISE_TEST,
        "wall_s": ev.wall_s,
        "metrics": {k: {"label": _describe(k)[0], "unit": _key_unit(k)} for k in keys},
        "runs": [
            {
                "seed": r.seed,
                "variant": r.variant,
                "wall_s": r.wall_s,
                "metrics": {k: _num(v) for k, v in r.metrics.scalars().items()},
                "controls_by_outcome": r.metrics.controls_by_outcome,
                "controls_by_xapp": r.metrics.controls_by_xapp,
            }
            for r in ev.runs
        ],
        "summary": {
            k: {
                "baseline": spread(c.baseline),
                "xapps": spread(c.xapps),
                "diff": {
                    "mean": _num(c.diff_mean),
                    "stderr": _num(c.diff_stderr),
                    "ci95": _num(c.ci95),
                    "beyond_noise": c.beyond_noise,
                },
            }
            for k, c in summary.items()
        },
        "plot": plot,
    }


_COUNTS: Final = frozenset(
    {
        "handovers",
        "handovers_a3",
        "handovers_xapp",
        "handovers_cell_off",
        "ping_pongs",
        "rlf",
        "handover_failures",
        "too_late",
        "too_early",
        "wrong_cell",
        "controls",
        "conflicts",
        "conflicts_refused",
    }
)


def _fmt(value: float, scale: float = 1.0, count: bool = False) -> str:
    if math.isnan(value):
        return "-"
    v = value * scale
    if count and v == round(v):
        return str(round(v))
    if v == 0.0:
        return "0"
    if abs(v) < 10.0:
        return f"{v:#.3g}"
    if abs(v) < 1000.0:
        return f"{v:.1f}"
    return f"{v:.0f}"


def _signed(value: float, scale: float, count: bool = False) -> str:
    text = _fmt(value, scale, count)
    return text if text.startswith("-") or text == "0" else f"+{text}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> list[str]:
    """Names in the first ``left`` columns, figures right-aligned in the others."""
    return table(header, rows, right=range(left, len(header)))


_RUN_COLUMNS: Final = (
    ("THP MEAN", "ue_thp_dl_mean_kbps"),
    ("THP P5", "ue_thp_dl_p5_kbps"),
    ("PRB PEAK", "prb_util_peak_pct"),
    ("PRB P95", "prb_util_p95_pct"),
    ("SLA UE-S", "sla_violation_ue_s"),
    ("HO A3", "handovers_a3"),
    ("HO XAPP", "handovers_xapp"),
    ("PING-PONG", "ping_pongs"),
    ("RLF", "rlf"),
    ("OUTAGE", "outage_ue_s"),
    ("CELL-H", "active_cell_hours"),
    ("KWH", "energy_kwh"),
    ("CONFLICTS", "conflicts"),
)


def ran_model(scenario: Scenario) -> str:
    """One line saying which RAN mobility model the scenario's runs used, with its settings."""
    ran = scenario.ran
    timers = (
        f"T310 {ran.t310_ms} ms, re-establishment {ran.reestablishment_ms:g} ms, "
        f"handover interruption {ran.interruption_ms:g} ms"
    )
    if ran.mobility == "none":
        return f"none (only handover controls move UEs); {timers}"
    extra = ""
    if ran.cells or ran.relations:
        extra = f", {len(ran.cells)} per-cell override(s), {len(ran.relations)} CIO(s)"
    return (
        f"a3 (hysteresis {ran.hysteresis_db:g} dB, time-to-trigger {ran.time_to_trigger_ms} ms, "
        f"offset {ran.a3_offset_db:g} dB, L3 filter k={ran.filter_coefficient}{extra}); {timers}"
    )


def scheduler_model(scenario: Scenario) -> str:
    """One line saying which scheduler and traffic models the scenario's runs used."""
    spec = scenario.scheduler
    kind = {"pf": "proportional fair", "rr": "round robin", "need": "in proportion to need"}
    line = f"{spec.kind} ({kind[spec.kind]}"
    if spec.kind == "pf":
        line += f", time constant {spec.pf_time_constant_ms:g} ms"
    ues: Counter[str] = Counter()
    for group in scenario.ue_groups:
        ues[group.traffic] += group.count
    traffic = ", ".join(f"{model} {n} UEs" for model, n in sorted(ues.items()))
    return f"{line}) inside each slice's PRBs; traffic: {traffic or 'no UEs'}"


def render_table(ev: Evaluation, plot: str | None = None) -> str:
    """The human-readable report: settings, one line per run, the summary over seeds."""
    sc = ev.scenario
    seeds = ",".join(map(str, ev.seeds))
    lines = [
        f"ric eval: scenario {sc.name} ({ev.source}), xApps {', '.join(ev.xapps) or 'none'}, "
        f"seeds {seeds}, {ev.duration_s:g} s simulated per run, conflicts {ev.conflict_policy}",
        f"RAN mobility: {ran_model(sc)}",
        f"Scheduler: {scheduler_model(sc)}",
        f"{len(ev.runs)} runs in {ev.wall_s:.1f} s wall time",
        "",
        "per run (throughput in Mbit/s, PRB use in %):",
    ]
    rows = []
    for r in ev.runs:
        values = r.metrics.scalars()
        cells = [str(r.seed), "baseline" if r.variant == "baseline" else "xApps"]
        for _, key in _RUN_COLUMNS:
            cells.append(_fmt(values[key], _describe(key)[2], key in _COUNTS))
        cells.append(f"{r.wall_s:.1f}")
        rows.append(cells)
    header = ["SEED", "RUN", *(c for c, _ in _RUN_COLUMNS), "WALL S"]
    lines += _table(header, rows, left=2)
    lines += [
        "",
        f"summary over {len(ev.seeds)} seed(s): mean [min..max]; difference = with xApps - "
        "baseline, paired by seed, +- 95 % CI",
    ]
    rows = []
    for key, c in summarise(ev).items():
        label, unit, scale = _describe(key)
        name = f"{label} ({unit})" if unit else label
        n = key in _COUNTS

        def cell(s: Any, scale: float = scale, n: bool = n) -> str:
            return f"{_fmt(s.mean, scale, n)} [{_fmt(s.min, scale, n)}..{_fmt(s.max, scale, n)}]"

        diff = _signed(c.diff_mean, scale, n)
        if not math.isnan(c.ci95):
            diff += f" +- {_fmt(c.ci95, scale, n)}"
        verdict = {True: "yes", False: "no", None: "n/a"}[c.beyond_noise]
        rows.append([name, cell(c.baseline), cell(c.xapps), diff, verdict])
    lines += _table(["FIGURE", "BASELINE", "WITH XAPPS", "DIFFERENCE", "BEYOND NOISE"], rows)
    outcomes: Counter[str] = Counter()
    for r in ev.runs:
        if r.variant == "xapps":
            outcomes.update(r.metrics.controls_by_outcome)
    if outcomes:
        text = ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))
        lines += ["", f"controls by outcome (with xApps, all seeds): {text}"]
    lines += ["", f"beyond noise: {NOISE_TEST}"]
    if plot:
        lines.append(f"plot: {plot}")
    return "\n".join(lines)
