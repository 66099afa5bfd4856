"""The one exception tree of the ric package.

::

    RicError                      base of everything the runtime raises on purpose
    +-- ConfigError               a configuration key has a bad value (names key and value)
    +-- PluginError               an xApp plugin cannot be loaded or is declared wrongly
    +-- ProtocolError             an E2 message breaks the contract; carries an E2 cause
    +-- NotConnectedError         the node a request is for has no live session
    +-- StateError                a resource is used in the wrong state (reopened, closed)

Library errors (gRPC, protobuf, pydantic) are converted at the boundary with ``from``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ric.model import Cause


class RicError(Exception):
    """Base class of every error the ric package raises on purpose."""


class ConfigError(RicError):
    """A configuration value is missing or wrong; the message names the key and the value."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"config key {key!r}: {problem}")


class PluginError(RicError):
    """An xApp plugin cannot be loaded; the message names the plugin and the problem."""

    def __init__(self, plugin: str, problem: str) -> None:
        self.plugin = plugin
        self.problem = problem
        super().__init__(f"xApp plugin {plugin!r}: {problem}")


class ProtocolError(RicError):
    """An E2 message breaks the wire contract; ``cause`` is what the peer is told.

    ``request_id`` is the (requestor, instance) pair of the subscription or control the
    message was about, when there is one, and ``ran_function_id`` its RAN function; the
    ErrorIndication names both.
    """

    def __init__(
        self, cause: Cause, request_id: tuple[int, int] | None = None, ran_function_id: int = 0
    ) -> None:
        self.cause = cause
        self.request_id = request_id
        self.ran_function_id = ran_function_id
        super().__init__(f"{cause.code.name}: {cause.detail}" if cause.detail else cause.code.name)


class NotConnectedError(RicError):
    """The E2 node a request is addressed to has no live session."""


class StateError(RicError):
    """A resource was used in a state that does not allow it (for example opened twice)."""
