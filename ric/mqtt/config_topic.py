"""The inbound config topic: new settings for an xApp, from ``<p>/config/<xapp>/set``.

A message there (not retained, a JSON object) reconfigures the loaded xApp of that name; the
answer, published on ``<p>/config/<xapp>/reply``, says it was applied (with the settings now in
force) or names the error and the key. The MQTT bridge subscribes when ``[mqtt]
inbound_config`` is true and hands each message here.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from ric.errors import ConfigError
from ric.mqtt.client import topic_level

if TYPE_CHECKING:
    from ric.host import XAppHost
    from ric.types import Clock
    from ric.view import RuntimeView

__all__ = ["ConfigTopic"]

log = logging.getLogger("ric.mqtt")


class _Refused(Exception):
    """An inbound config message that is answered with an error (not a config key error)."""


class ConfigTopic:
    """Answers ``<prefix>/config/<xapp>/set`` messages; ``reserved`` is an xApp name that is
    never configurable (the bridge's own internal xApp)."""

    def __init__(self, prefix: str, ric_id: str, clock: Clock, *, reserved: str) -> None:
        self.prefix = prefix
        self.ric_id = ric_id
        self.clock = clock
        self.reserved = reserved
        self.filter = f"{prefix}/config/+/set"
        """The topic filter to subscribe to."""

    def handle(
        self, runtime: RuntimeView | None, topic: str, payload: bytes, retained: bool
    ) -> tuple[str, dict[str, Any]] | None:
        """The reply topic and body for one inbound message, or None when ``topic`` is not a
        config topic. Applies the settings when they are valid."""
        prefix = f"{self.prefix}/config/"
        if not (topic.startswith(prefix) and topic.endswith("/set")):
            return None
        xapp = topic[len(prefix) : -len("/set")]
        reply: dict[str, Any] = {"ric_id": self.ric_id, "xapp": xapp, "time": self.clock.time()}
        try:
            if retained:
                raise _Refused("retained set messages are ignored; publish without retain")
            host = self._host(runtime, xapp)
            try:
                raw = json.loads(payload)
            except ValueError as exc:
                raise _Refused(f"the payload is not JSON: {exc}") from None
            if not isinstance(raw, dict):
                raise _Refused("the payload must be a JSON object of the xApp's settings")
            config = host.reconfigure(raw)
        except _Refused as exc:
            reply.update(ok=False, error=str(exc), key=None)
        except ConfigError as exc:
            inner = exc.key.removeprefix(f"xapps.config.{xapp}.")
            reply.update(ok=False, error=str(exc), key=inner)
        else:
            reply.update(ok=True, config=config.model_dump(mode="json"))
            log.info("xApp %s reconfigured over MQTT", xapp, extra={"xapp": xapp})
        return f"{prefix}{topic_level(xapp)}/reply", reply

    def _host(self, runtime: RuntimeView | None, xapp: str) -> XAppHost:
        if runtime is None or xapp == self.reserved:
            raise _Refused(f"no xApp named {xapp!r} can be configured")
        try:
            return runtime.host(xapp)
        except KeyError:
            loaded = ", ".join(h.name for h in runtime.hosts if h.name != self.reserved)
            raise _Refused(f"no xApp named {xapp!r} is loaded (loaded: {loaded})") from None
