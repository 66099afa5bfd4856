"""Policy status notifications end to end: slicesla on a live runtime with the simulator,
a policy put over A1 with a notificationDestination on a real listener."""

from __future__ import annotations

import urllib.parse
from pathlib import Path

import aiohttp

from ric.host import XAppState
from tests.a1.listener import listening
from tests.conftest import wait_for
from tests.integration.stack import running_ric

TOKEN = "notify-a1-token-0123456789"


async def test_slicesla_enforcing_and_stopping_are_notified(tmp_path: Path) -> None:
    """A policy put with a notificationDestination on a listener: the listener receives
    ENFORCED within 2 s of slicesla reporting it, then NOT_ENFORCED when slicesla stops;
    each body is exactly the standard's status object; the counter says two were sent."""
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    async with listening() as listener:
        overrides = {
            "http.token_file": str(token_file),
            "a1.notify_hosts": ["127.0.0.1"],
            "xapps.config.slicesla": {"hold_reports": 1, "cooldown_s": 0.0},
        }
        async with (
            running_ric("slicesla", overrides=overrides) as ric,
            aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http,
        ):
            host = ric.runtime.host("slicesla")
            await wait_for(lambda: host.instance is not None, what="slicesla started")
            query = urllib.parse.urlencode({"notificationDestination": listener.url})
            url = f"{ric.url}/A1-P/v2/policytypes/slice-sla/policies/urllc"
            policy = {"targets": {"2-000002": {"max_delay_ms": 5.0}}}
            async with http.put(f"{url}?{query}", json=policy) as response:
                assert response.status == 201, await response.text()

            await wait_for(
                lambda: listener.received == [{"enforceStatus": "ENFORCED"}],
                timeout=2.0,
                what="the ENFORCED notification",
            )
            async with http.get(f"{url}/status") as response:
                assert await response.json() == {"enforceStatus": "ENFORCED"}

            host.request_stop()
            await wait_for(lambda: host.state is XAppState.STOPPED, what="slicesla stopped")
            await wait_for(
                lambda: len(listener.received) == 2, timeout=2.0, what="the stop notification"
            )
            assert listener.received[1] == {
                "enforceStatus": "NOT_ENFORCED",
                "enforceReason": "OTHER_REASON",
            }
            async with http.get(f"{ric.url}/api/v1/policies/slice-sla/urllc") as response:
                detail = await response.json()
            assert detail["detail"] == "xApp slicesla does not run"
            sent = ric.sensor.registry.get_sample_value(
                "ric_a1_notifications_total", {"outcome": "sent"}
            )
            assert sent == 2
