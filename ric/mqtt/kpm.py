"""The MQTT bridge's internal xApp (``ric-mqtt``): it receives the opted-in KPM reports.

Its one report is built from the configuration (``kpm_metrics`` per cell, every
``kpm_interval_s``), so the runtime's subscription merging serves it together with the other
xApps; its handler hands each report to the bridge, which publishes one message per cell.
"""

from __future__ import annotations

from collections.abc import Callable

from ric.config import MqttSettings
from ric.plugins import Plugin
from ric.report import KpmReport
from ric.xapp import NAME_PATTERN, Report, SubscriptionStatus, XApp

__all__ = ["BRIDGE_XAPP", "KPM_SLACK", "KPM_UNITS", "kpm_plugin"]

BRIDGE_XAPP = "ric-mqtt"
"""The name of the bridge's internal xApp that receives the opted-in KPM reports."""

KPM_UNITS: dict[str, str] = {
    "RRU.PrbUsedDl": "PRB",
    "RRU.PrbUsedUl": "PRB",
    "RRU.PrbAvailDl": "PRB",
    "RRU.PrbAvailUl": "PRB",
    "RRU.PrbTotDl": "%",
    "RRU.PrbTotUl": "%",
    "DRB.UEThpDl": "kbit/s",
    "DRB.UEThpUl": "kbit/s",
    "RRC.ConnMean": "UE",
    "RRC.ConnMax": "UE",
    "DRB.RlcSduDelayDl": "0.1 ms",
    "L1M.RSRP": "dBm",
    "L1M.SINR": "dB",
}
"""Units of the TS 28.552 measurements (as in ``proto/ric/e2/v1/kpm.proto``); a metric not
listed is published with ``"unit": null``."""

KPM_SLACK = 0.8
"""A cell's KPM is published when at least this share of ``kpm_interval_s`` has passed since
its last one: the slack absorbs reporting jitter, the limit still stops floods."""


def kpm_plugin(
    settings: MqttSettings, version: str, deliver: Callable[[KpmReport], None]
) -> Plugin | None:
    """The internal xApp that hands the opted-in KPM reports to ``deliver`` (None when
    ``kpm_metrics`` is empty)."""
    metrics = settings.kpm_metrics
    if not metrics:
        return None
    report = Report(*metrics, period_ms=max(1, round(settings.kpm_interval_s * 1000)), per="cell")

    class MqttKpm(XApp):
        """The MQTT bridge's internal xApp: hands the opted-in KPM reports to the bridge."""

        name = BRIDGE_XAPP
        reports = (report,)
        queue_size = 64

        async def on_report(self, report: KpmReport) -> None:
            deliver(report)

        async def on_subscription(self, status: SubscriptionStatus) -> None:
            missing = status.not_admitted or (
                {m: status.cause for m in status.report.metrics} if status.cause else {}
            )
            for metric, cause in missing.items():
                self.log.warning(
                    "node %s does not serve %s for MQTT: %s", status.node, metric, cause
                )

    MqttKpm.version = version
    assert NAME_PATTERN.match(MqttKpm.name)
    return Plugin(MqttKpm, "ric.mqtt (internal)")
