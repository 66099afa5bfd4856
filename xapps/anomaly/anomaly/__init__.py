"""anomaly: an anomaly detector xApp.

Learns, online and per cell, the normal range of five KPIs from a cell-level KPM report every
second, and flags a cell whose KPIs leave it:

=================  ==========================================  =========
feature            from                                        anomalous
=================  ==========================================  =========
``prb_pct``        ``RRU.PrbTotDl`` (percent of PRBs used)      high
``thp_kbps``       ``DRB.UEThpDl`` (mean per-UE throughput)     low
``kbps_per_prb``   throughput x UEs / PRBs used (efficiency)    low
``delay_ms``       ``DRB.RlcSduDelayDl`` (0.1 ms, as ms)        high
``ues``            ``RRC.ConnMean``                             either
=================  ==========================================  =========

The method, per (cell, feature), with the state kept as NumPy arrays (cells x features). Rates and
delays vary multiplicatively (a cell-edge UE can need ten times the PRBs of another), so those
three features are learned on a log scale, ``log(x + offset)``; the PRB share (bounded, and most
telling as it nears 100 %) and the UE count are learned as they are:

- **level**: an exponentially weighted moving average (``alpha``);
- **spread**: an exponentially weighted mean absolute deviation around the level (``beta``),
  scaled by 1.2533 (``sqrt(pi / 2)``) to estimate a standard deviation, and floored
  (``min_spread`` on the log scale, ``min_spread_pct`` points for the PRB share,
  ``min_spread_ues`` for the count) so a very steady KPI does not alarm on noise;
- **robust z-score**: ``(x - level) / spread``, signed so that positive is the anomalous
  direction of the feature; a value is a breach when its score exceeds ``z_threshold``;
- **level shift**: an EWMA of each feature's scores (``shift_lambda``, scores clipped to
  +-``clip``) catches a moderate shift that lasts (a fault that halves a cell's efficiency for
  minutes) which no single score would: a report is also a breach when that average exceeds
  ``shift_threshold`` (an EWMA control chart);
- **robust update**: a value updates the level and spread only after being clipped to
  ``level +- clip x spread``, so a fault moves the learned range slowly, not at once;
- **warm-up**: the first ``warmup_reports`` of a cell only teach (a plain running mean and
  deviation, then the EWMAs), and raise nothing;
- **k of n**: a (cell, feature) is flagged when at least ``k`` of its last ``n`` reports
  breached, and cleared when none of the last ``n`` did.

When a feature of a cell becomes flagged, the xApp records an :class:`Alert` (``alerts``: time,
cell, feature, value, score, what the learned level was), publishes it to
``alerts/<cell>`` (MQTT, when the bridge is on) and counts it; a ``cleared`` message follows
when the cell is normal again. Metrics: ``alerts_total{feature}``, ``anomalous{cell}`` (1 while
any feature of the cell is flagged), ``anomalous_cells`` and ``score{cell,feature}``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Self

import numpy as np
import numpy.typing as npt
from pydantic import Field, model_validator

from ric import Counter, Gauge, KpmReport, NodeInfo, Report, XApp

__all__ = ["FEATURES", "Alert", "AnomalyDetector"]

FloatArray = npt.NDArray[np.float64]

DELAY = "DRB.RlcSduDelayDl"
METRICS = ("RRU.PrbTotDl", "RRU.PrbUsedDl", "DRB.UEThpDl", "RRC.ConnMean", DELAY)

FEATURES: Final = ("prb_pct", "thp_kbps", "kbps_per_prb", "delay_ms", "ues")
"""The features the detector learns, in the order of its arrays' columns."""
_DIRECTION: Final = np.array([1.0, -1.0, -1.0, 1.0, 0.0])
"""+1: only high values are anomalous, -1: only low ones, 0: both."""
_OFFSET: Final = np.array([np.nan, 100.0, 50.0, 1.0, np.nan])
"""Features learned as ``log(x + offset)`` (NaN: as they are), in their units (kbit/s,
kbit/s per PRB, ms)."""
_LOG: Final = ~np.isnan(_OFFSET)
_SIGMA_PER_MAD: Final = math.sqrt(math.pi / 2.0)
"""Standard deviation per mean absolute deviation, for normally distributed values."""


@dataclass(frozen=True, slots=True)
class Alert:
    """A feature of a cell that left its learned range: when (Unix seconds, the xApp's
    clock), where, the value, its robust z-score, and the level it was learned at."""

    at: float
    cell: str
    feature: str
    value: float
    score: float
    level: float

    def as_dict(self) -> dict[str, float | str]:
        """The alert as the JSON the xApp publishes."""
        return {
            "at": self.at,
            "cell": self.cell,
            "feature": self.feature,
            "value": self.value,
            "score": self.score,
            "level": self.level,
        }


def features(report: KpmReport) -> FloatArray:
    """The feature matrix (rows x FEATURES) of a cell report, NaN where it has no value."""
    n = len(report)
    nan = np.full(n, np.nan)

    def col(metric: str) -> FloatArray:
        return np.asarray(report[metric], dtype=np.float64) if metric in report.metrics else nan

    prb_used = col("RRU.PrbUsedDl")
    thp = col("DRB.UEThpDl")
    ues = col("RRC.ConnMean")
    with np.errstate(divide="ignore", invalid="ignore"):
        per_prb = np.where(prb_used > 0.5, thp * ues / prb_used, np.nan)
    return np.column_stack([col("RRU.PrbTotDl"), thp, per_prb, col(DELAY) / 10.0, ues])


class AnomalyDetector(XApp):
    """Flags cells whose KPIs leave their learned normal range (robust EWMA z-scores)."""

    name = "anomaly"
    version = "0.1.0"
    reports = [Report(*METRICS, period_ms=1000, per="cell")]

    class Config(XApp.Config):
        """anomaly settings."""

        alpha: float = Field(0.03, gt=0.0, le=1.0)
        """Weight of a new value in the level (EWMA)."""
        beta: float = Field(0.03, gt=0.0, le=1.0)
        """Weight of a new deviation in the spread (EW mean absolute deviation)."""
        z_threshold: float = Field(4.0, gt=0.0)
        """A robust z-score above this (in the feature's anomalous direction) is a breach."""
        clip: float = Field(3.0, gt=0.0)
        """Values are clipped to level +- clip x spread before they update the estimates."""
        shift_lambda: float = Field(0.2, gt=0.0, le=1.0)
        """Weight of a new score in the scores' EWMA (the level-shift chart)."""
        shift_threshold: float = Field(0.0, ge=0.0)
        """The scores' EWMA above this is a breach too; 0 (the default) turns the chart off:
        on seeds/faults.toml it trades more precision for recall than it is worth."""
        min_spread: float = Field(0.1, gt=0.0)
        """Smallest spread (standard deviation) of a log-scale feature: 0.1 is about 10 %."""
        min_spread_pct: float = Field(3.0, gt=0.0)
        """Smallest spread of the PRB share, percentage points."""
        min_spread_ues: float = Field(1.0, gt=0.0)
        """Smallest spread of the UE count."""
        warmup_reports: int = Field(60, ge=2)
        """Reports a cell only teaches before it can be flagged."""
        k: int = Field(3, ge=1)
        """Breaches among the last ``n`` reports that flag a feature."""
        n: int = Field(5, ge=1, le=64)
        features: tuple[str, ...] = ("prb_pct", "thp_kbps", "kbps_per_prb", "delay_ms")
        """The features that may raise alerts (all are learned). The UE count is left out by
        default: UEs moving between cells change it without anything being wrong."""
        keep_alerts: int = Field(10_000, ge=1)
        """How many alerts ``alerts`` keeps (the oldest go first)."""

        @model_validator(mode="after")
        def _k_of_n(self) -> Self:
            if self.k > self.n:
                raise ValueError(f"k ({self.k}) must not exceed n ({self.n})")
            unknown = sorted(set(self.features) - set(FEATURES))
            if unknown:
                raise ValueError(f"unknown features {unknown}; known: {list(FEATURES)}")
            return self

    config: Config
    cells: dict[str, int]
    """Row of each cell in the state arrays."""
    level: FloatArray
    """Learned level per cell and feature (cells x FEATURES), on the feature's scale."""
    spread: FloatArray
    """Learned mean absolute deviation per cell and feature, on the feature's scale."""
    seen: npt.NDArray[np.int64]
    """Values learned per cell and feature."""
    shift: FloatArray
    """EWMA of the (clipped) scores per cell and feature: the level-shift chart."""
    breaches: npt.NDArray[np.bool_]
    """The last ``n`` breach flags per cell and feature (cells x FEATURES x n), a ring."""
    flagged: npt.NDArray[np.bool_]
    """Which features of which cells are flagged now."""
    alerts: list[Alert]
    """Every alert raised, oldest first (an evaluator reads this)."""
    _alerting: npt.NDArray[np.bool_]
    _alerts: Counter
    _anomalous: Gauge
    _anomalous_cells: Gauge
    _score: Gauge

    async def on_start(self) -> None:
        self.cells = {}
        width = len(FEATURES)
        self.level = np.zeros((0, width))
        self.spread = np.zeros((0, width))
        self.seen = np.zeros((0, width), dtype=np.int64)
        self.shift = np.zeros((0, width))
        self.breaches = np.zeros((0, width, self.config.n), dtype=np.bool_)
        self.flagged = np.zeros((0, width), dtype=np.bool_)
        self.alerts = []
        self._alerting = np.array([f in self.config.features for f in FEATURES])
        self._alerts = self.metrics.counter(
            "alerts", "Alerts raised: a feature of a cell left its learned range.", ("feature",)
        )
        self._anomalous = self.metrics.gauge(
            "anomalous", "1 while some KPI of the cell is out of its learned range.", ("cell",)
        )
        self._anomalous_cells = self.metrics.gauge(
            "anomalous_cells", "Cells with some KPI out of its learned range."
        )
        self._anomalous_cells.set(0)
        self._score = self.metrics.gauge(
            "score", "Latest robust z-score of a feature of a cell.", ("cell", "feature")
        )

    def _rows(self, cells: tuple[str, ...]) -> npt.NDArray[np.int64]:
        new = [c for c in cells if c not in self.cells]
        if new:
            for c in new:
                self.cells[c] = len(self.cells)
            grow = len(new)
            width = len(FEATURES)
            self.level = np.vstack([self.level, np.zeros((grow, width))])
            self.spread = np.vstack([self.spread, np.zeros((grow, width))])
            self.seen = np.vstack([self.seen, np.zeros((grow, width), dtype=np.int64)])
            self.shift = np.vstack([self.shift, np.zeros((grow, width))])
            self.breaches = np.concatenate(
                [self.breaches, np.zeros((grow, width, self.config.n), dtype=np.bool_)]
            )
            self.flagged = np.vstack([self.flagged, np.zeros((grow, width), dtype=np.bool_)])
        return np.array([self.cells[c] for c in cells], dtype=np.int64)

    @staticmethod
    def scale(x: FloatArray) -> FloatArray:
        """Feature values (rows x FEATURES) on the scale they are learned on."""
        with np.errstate(invalid="ignore", divide="ignore"):
            logged = np.log(np.maximum(x, 0.0) + np.nan_to_num(_OFFSET, nan=1.0))
        out: FloatArray = np.where(_LOG, logged, x)
        return out

    @staticmethod
    def unscale(y: FloatArray) -> FloatArray:
        """The inverse of ``scale``."""
        out: FloatArray = np.where(_LOG, np.exp(y) - np.nan_to_num(_OFFSET, nan=1.0), y)
        return out

    def scores(self, rows: npt.NDArray[np.int64], y: FloatArray) -> FloatArray:
        """Robust z-scores of scaled values ``y`` (rows x FEATURES) against the learned state
        of ``rows``, signed so that positive is the anomalous direction; NaN where ``y`` is."""
        level = self.level[rows]
        sigma = self._sigma(rows)
        z = (y - level) / sigma
        direction = np.broadcast_to(_DIRECTION, z.shape)
        out: FloatArray = np.where(direction == 0.0, np.abs(z), z * direction)
        return out

    def _sigma(self, rows: npt.NDArray[np.int64]) -> FloatArray:
        cfg = self.config
        floor = np.array([cfg.min_spread_pct, 0.0, 0.0, 0.0, cfg.min_spread_ues])
        floor = np.where(_LOG, cfg.min_spread, floor)
        out: FloatArray = np.maximum(_SIGMA_PER_MAD * self.spread[rows], floor)
        return out

    def _learn(self, rows: npt.NDArray[np.int64], x: FloatArray) -> None:
        """Update level and spread with the (clipped) values; NaN values teach nothing."""
        cfg = self.config
        ok = ~np.isnan(x)
        seen = self.seen[rows]
        level = self.level[rows]
        spread = self.spread[rows]
        sigma = self._sigma(rows)
        warm = seen >= cfg.warmup_reports // 2
        clipped = np.where(warm, np.clip(x, level - cfg.clip * sigma, level + cfg.clip * sigma), x)
        # A running mean while few values are known, the EWMA after.
        a = np.maximum(cfg.alpha, 1.0 / (seen + 1.0))
        b = np.maximum(cfg.beta, 1.0 / (seen + 1.0))
        new_level = level + a * (clipped - level)
        new_spread = spread + b * (np.abs(clipped - level) - spread)
        new_spread = np.where(seen == 0, 0.0, new_spread)
        self.level[rows] = np.where(ok, new_level, level)
        self.spread[rows] = np.where(ok, new_spread, spread)
        self.seen[rows] = seen + ok

    async def on_node_down(self, node: NodeInfo) -> None:
        for cell in node.cells:
            row = self.cells.get(str(cell))
            if row is not None and self.flagged[row].any():
                self.flagged[row] = False
                self._anomalous.labels(cell=str(cell)).set(0)
        self._anomalous_cells.set(int(self.flagged.any(axis=1).sum()))

    async def on_report(self, report: KpmReport) -> None:
        if "RRU.PrbTotDl" not in report.metrics and "DRB.UEThpDl" not in report.metrics:
            return
        cfg = self.config
        rows = self._rows(report.entity_ids)
        x = features(report)
        y = self.scale(x)
        z = self.scores(rows, y)
        ready = (self.seen[rows] >= cfg.warmup_reports) & ~np.isnan(z)
        lam = cfg.shift_lambda
        shift = self.shift[rows]
        shift = np.where(ready, (1.0 - lam) * shift + lam * np.clip(z, -cfg.clip, cfg.clip), shift)
        self.shift[rows] = shift
        shifted = (shift > cfg.shift_threshold) if cfg.shift_threshold > 0 else False
        breach = ready & ((z > cfg.z_threshold) | shifted) & self._alerting
        ring = np.roll(self.breaches[rows], 1, axis=2)  # the oldest flag comes round ...
        ring[:, :, 0] = breach  # ... and is replaced by the newest
        self.breaches[rows] = ring
        count = ring.sum(axis=2)
        was = self.flagged[rows]
        now_flagged = np.where(was, count > 0, count >= cfg.k)
        self.flagged[rows] = now_flagged
        self._learn(rows, y)
        self._emit(report, rows, x, z, was, now_flagged)

    def _emit(
        self,
        report: KpmReport,
        rows: npt.NDArray[np.int64],
        x: FloatArray,
        z: FloatArray,
        was: npt.NDArray[np.bool_],
        now_flagged: npt.NDArray[np.bool_],
    ) -> None:
        at = self.now()
        level = self.unscale(self.level[rows])
        for i, cell in enumerate(report.entity_ids):
            for j, feature in enumerate(FEATURES):
                score = float(z[i, j])
                if not math.isnan(score) and self.seen[rows[i], j] >= self.config.warmup_reports:
                    self._score.labels(cell=cell, feature=feature).set(round(score, 3))
                if now_flagged[i, j] and not was[i, j]:
                    alert = Alert(at, cell, feature, float(x[i, j]), score, float(level[i, j]))
                    self.alerts.append(alert)
                    self._alerts.labels(feature=feature).inc()
                    self.publish(f"alerts/{cell}", alert.as_dict())
                    self.log.warning(
                        "%s: %s %.4g is out of its range (level %.4g, z %.1f)",
                        cell,
                        feature,
                        alert.value,
                        alert.level,
                        score,
                    )
            if now_flagged[i].any() != was[i].any():
                anomalous = bool(now_flagged[i].any())
                self._anomalous.labels(cell=cell).set(1 if anomalous else 0)
                if not anomalous:
                    self.publish(f"alerts/{cell}/cleared", {"at": at, "cell": cell})
                    self.log.info("%s: back in range", cell)
        del self.alerts[: -self.config.keep_alerts]
        self._anomalous_cells.set(int(self.flagged.any(axis=1).sum()))
