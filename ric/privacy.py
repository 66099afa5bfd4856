"""Pseudonymisation of UE identifiers that leave the runtime.

With ``[privacy] pseudonymize_ue_ids = true``, every UE id written to logs, published on MQTT
or recorded in traces is replaced by a keyed hash: ``ue-`` and 16 hex digits of
HMAC-SHA256(key, RAN UE id). The same UE keeps the same pseudonym for as long as the key is
the same, so a dashboard can follow "a UE" across reports, but a broker, a log reader or a
trace holder without the key cannot tell which subscriber it is, nor join it with another
system's pseudonyms. The key comes from a file (``key_file``); without one a random key is
made per process, so pseudonyms do not survive a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from pathlib import Path

from ric.errors import ConfigError

__all__ = ["Pseudonymizer"]

_UE_TARGET = re.compile(r"\bue:(\d+)\b")
_MADE: dict[tuple[bool, str], Pseudonymizer] = {}


class Pseudonymizer:
    """Maps RAN UE ids to stable keyed pseudonyms; a disabled one returns ids unchanged."""

    def __init__(self, key: bytes | None, *, enabled: bool = True) -> None:
        if enabled and key is not None and len(key) < 16:
            raise ConfigError("privacy.key_file", "the key must be at least 16 bytes")
        self.enabled = enabled
        self._key = key if key is not None else secrets.token_bytes(32)
        self._cache: dict[str, str] = {}

    @classmethod
    def from_config(cls, enabled: bool, key_file: str) -> Pseudonymizer:
        """From ``[privacy]``, one instance per setting in a process (so that logs, MQTT and
        traces agree even with a random key); ConfigError naming the key file when it cannot
        be read."""
        key = (enabled, key_file)
        made = _MADE.get(key)
        if made is None:
            made = _MADE[key] = cls._make(enabled, key_file)
        return made

    @classmethod
    def _make(cls, enabled: bool, key_file: str) -> Pseudonymizer:
        if not enabled:
            return cls(None, enabled=False)
        if not key_file:
            return cls(None)
        try:
            return cls(Path(key_file).read_bytes().strip())
        except OSError as exc:
            raise ConfigError(
                "privacy.key_file", f"cannot read {key_file}: {exc.strerror}"
            ) from None

    def ue(self, ue_id: str | int) -> str:
        """The pseudonym of one UE (or the id itself when disabled)."""
        text = str(ue_id)
        if not self.enabled:
            return text
        out = self._cache.get(text)
        if out is None:
            digest = hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()[:16]
            out = self._cache[text] = f"ue-{digest}"
            if len(self._cache) > 100_000:
                self._cache.clear()
        return out

    def ue_number(self, ue_id: str | int) -> int:
        """A numeric pseudonym (48 bits of the keyed hash), for formats whose UE ids are
        numbers (E2 messages in traces); the id itself when disabled."""
        if not self.enabled:
            return int(ue_id)
        return int(self.ue(ue_id)[3:15], 16)

    def text(self, text: str) -> str:
        """``text`` with every ``ue:<id>`` target replaced by its pseudonym."""
        if not self.enabled or "ue:" not in text:
            return text
        return _UE_TARGET.sub(lambda m: f"ue:{self.ue(m.group(1))}", text)
