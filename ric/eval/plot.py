"""The PNG of ``ric eval``: the main KPIs over time, baseline against with xApps, one seed.

Drawn with matplotlib's Agg backend (a file, no display needed). Each curve is averaged over
one-second bins of ticks; the scenario's events are shaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from ric.eval.runner import Evaluation

__all__ = ["write_plot"]

_PANELS: Final = (
    ("ue_thp_dl_mean_kbps", "UE DL throughput, mean (Mbit/s)", 1e-3),
    ("ue_thp_dl_p5_kbps", "UE DL throughput, 5th pct (Mbit/s)", 1e-3),
    ("prb_util_max_pct", "busiest cell PRB use (%)", 1.0),
    ("active_cells", "active cells", 1.0),
)


def _binned(
    t: npt.NDArray[np.float64], y: npt.NDArray[np.float64], bin_s: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Mean of ``y`` over bins of ``bin_s`` seconds (NaNs left out), at each bin's end."""
    if t.size == 0:
        return t, y
    k = np.floor((t - 1e-9) / bin_s).astype(np.int64)
    n = int(k.max()) + 1
    ok = ~np.isnan(y)
    sums = np.bincount(k[ok], y[ok], n)
    counts = np.bincount(k[ok], None, n)
    mean = np.full(n, np.nan)
    np.divide(sums, counts, out=mean, where=counts > 0)
    return (np.arange(n, dtype=np.float64) + 1.0) * bin_s, mean


def write_plot(ev: Evaluation, path: str | Path, *, seed: int | None = None) -> Path:
    """Draw the KPIs of ``seed`` (default the first) into the PNG ``path``; returns it."""
    # A bare Figure draws with the Agg canvas: no pyplot, no global backend, no window.
    from matplotlib.figure import Figure

    seed = ev.seeds[0] if seed is None else seed
    runs = [("baseline", ev.run(seed, "baseline")), ("with xApps", ev.run(seed, "xapps"))]
    bin_s = max(1.0, ev.scenario.tick_ms / 1000.0)
    fig = Figure(figsize=(10, 10))
    axes = fig.subplots(len(_PANELS), 1, sharex=True)
    for ax, (key, label, scale) in zip(axes, _PANELS, strict=True):
        for name, run in runs:
            series = run.metrics.series
            t, y = _binned(series["time_s"], series[key] * scale, bin_s)
            ax.plot(t, y, label=name, linewidth=1.0)
        for event in ev.scenario.events:
            end = ev.duration_s if event.until_s is None else event.until_s
            ax.axvspan(event.at_s, end, color="grey", alpha=0.15, linewidth=0)
        ax.set_ylabel(label, fontsize=8)
        ax.grid(True, alpha=0.3)
    axes[0].legend(loc="upper right", fontsize=8)
    axes[-1].set_xlabel("time (s, virtual)")
    xapps = ", ".join(ev.xapps) or "none"
    fig.suptitle(
        f"ric eval: {ev.scenario.name}, seed {seed}, xApps {xapps}"
        + (" (events shaded)" if ev.scenario.events else "")
    )
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, format="png", dpi=100)
    return out
