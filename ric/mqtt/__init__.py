"""The MQTT bridge: what happens in the RAN, published as JSON to an operator's MQTT broker.

::

    bridge = MqttBridge(config.mqtt, ric_id=config.ric_id)     # or mqtt_bridge(config)
    async with Runtime(config, plugins, sensors=[bridge], components=[bridge]):
        ...

``Runtime.from_config`` builds it when ``[mqtt] enabled`` is true. The package is split by
reason to change:

- ``bridge``: the sensor that queues runtime events and the component that owns the
  connection and sends them (``MqttBridge``, ``mqtt_bridge``);
- ``client``: the broker connection's pieces (password file, TLS, the aiomqtt client);
- ``kpm``: the internal xApp (``ric-mqtt``) whose one report, built from ``kpm_metrics`` and
  ``kpm_interval_s``, shares the runtime's merged subscriptions with the other xApps;
- ``config_topic``: inbound xApp settings (``inbound_config = true``);
- ``stats``: what the bridge counts, offered to the sensors through ``stats_added`` (the
  Prometheus sensor exports it as ``ric_mqtt_*``).

Topics (``<p>`` is ``topic_prefix``; every payload is JSON, times are Unix seconds)::

    <p>/state/runtime             retained  the runtime online / offline (last will)
    <p>/state/nodes/<node>        retained  an E2 node online / offline, with its cells
    <p>/state/xapps/<xapp>        retained  an xApp's state (starting, running, ...)
    <p>/kpm/<node>/<cell>                   one cell's opted-in KPM values, with units
    <p>/controls/<xapp>                     one control action and its outcome
    <p>/conflicts                           one conflict between two xApps' controls
    <p>/audit/anchor              retained  the audit chain's last anchor (count, head, time)
    <p>/xapps/<xapp>/<suffix>               what an xApp published (XApp.publish)
    <p>/config/<xapp>/set         inbound   new settings for an xApp (inbound_config = true)
    <p>/config/<xapp>/reply                 the answer: applied, or the error naming the key

The payload schemas are in the README ("MQTT bridge").
"""

from ric.mqtt.bridge import MqttBridge, mqtt_bridge
from ric.mqtt.kpm import BRIDGE_XAPP, KPM_UNITS
from ric.mqtt.stats import MqttStats

__all__ = ["BRIDGE_XAPP", "KPM_UNITS", "MqttBridge", "MqttStats", "mqtt_bridge"]
