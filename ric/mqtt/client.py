"""The connection to the broker: the password file, the TLS context, the aiomqtt client and
the topic syntax. Everything that is wrong in ``[mqtt]`` is refused here, at construction, with
a ConfigError naming the key."""

from __future__ import annotations

import json
import logging
import ssl
import stat
from pathlib import Path
from typing import Any

import aiomqtt

from ric.config import MqttSettings
from ric.errors import ConfigError

__all__ = ["make_client", "read_password", "tls_context", "topic_level"]

log = logging.getLogger("ric.mqtt")


def topic_level(text: str) -> str:
    """``text`` made safe as one topic level (ids never need it; defence in depth)."""
    if any(c in text for c in "/+#\x00") or not text:
        return "".join("_" if c in "/+#\x00" else c for c in text) or "_"
    return text


def read_password(path: str) -> str:
    """The password in the file ``path`` (one line); warns when others may read the file."""
    file = Path(path)
    try:
        mode = file.stat().st_mode
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("mqtt.password_file", f"cannot read {path}: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("the MQTT password file %s is readable by other users (chmod 600 it)", path)
    return text.rstrip("\r\n")


class _ClosingSSLSocket(ssl.SSLSocket):
    """Closes itself when the TLS handshake fails (paho-mqtt leaves that socket open)."""

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except BaseException:
            self.close()
            raise


def tls_context(settings: MqttSettings) -> ssl.SSLContext | None:
    """The client's TLS context from ``[mqtt.tls]``, or None when TLS is off."""
    tls = settings.tls
    if not tls.enabled:
        return None
    try:
        context = ssl.create_default_context(cafile=tls.ca_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError("mqtt.tls.ca_file", f"cannot load {tls.ca_file}: {exc}") from None
    # create_default_context verifies the broker's certificate and host name; nothing here
    # turns that off, on purpose.
    context.sslsocket_class = _ClosingSSLSocket
    if tls.cert_file:
        try:
            context.load_cert_chain(tls.cert_file, tls.key_file or None)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                "mqtt.tls.cert_file", f"cannot load {tls.cert_file} / {tls.key_file}: {exc}"
            ) from None
    return context


def make_client(
    settings: MqttSettings,
    *,
    client_id: str,
    password: str | None,
    tls: ssl.SSLContext | None,
    will_topic: str,
    will_body: dict[str, Any],
) -> aiomqtt.Client:
    """A fresh client (one per connection attempt) whose last will publishes ``will_body``
    retained on ``will_topic``."""
    s = settings
    return aiomqtt.Client(
        s.host,
        s.port,
        username=s.username or None,
        password=password,
        identifier=client_id,
        will=aiomqtt.Will(
            will_topic,
            json.dumps(will_body, separators=(",", ":")).encode(),
            qos=s.qos.state,
            retain=True,
        ),
        clean_session=True,
        timeout=s.timeout_s,
        keepalive=s.keepalive_s,
        tls_context=tls,
        logger=logging.getLogger("ric.mqtt.client"),
    )
