"""The one exception tree of the ric package, drawn whole (where each class lives, and why).

::

    RicError                      base of everything the runtime raises on purpose  (here)
    +-- ConfigError               a configuration key has a bad value (names key and value)
    +-- PluginError               an xApp plugin cannot be loaded or is declared wrongly
    +-- ProtocolError             an E2 message breaks the contract; carries an E2 cause
    +-- NotConnectedError         the node a request is for has no live session
    +-- StateError                a resource is used in the wrong state (reopened, closed)
    +-- SdlError                  a bad SDL namespace, key or value, or its store failed
    |                                                                        (ric.sdl)
    +-- PolicyError               an A1 request cannot be served; has the HTTP status
    |   |                                                               (ric.a1.policy)
    |   +-- OverBudget            a policy validation ran past [a1] budget_s
    |                                                              (ric.a1.workers)
    +-- JsonRefused               a JSON body over a bound (depth, values, non-finite)
    |                                                                  (ric.jsonbounds)
    +-- TraceError                a trace file is foreign, damaged, truncated or too new
    |                                                             (ric.trace.format)
    +-- ReplayError               a replay cannot run (runtime unreachable, all refused)
    |                                                             (ric.trace.replay)
    +-- HarnessError              the test harness cannot run (node refused, time stuck)
    |                                                            (ric.trace.harness)
    +-- CsvImportError            a CSV import cannot go on            (ric.trace.csvimport)
    +-- AttachError               the runtime refused an xApp's attach or cannot be reached
    |                                                           (ric.northbound.client)
    +-- SetupFailed               the RIC did not answer a node's E2 setup
        |                                                     (ric.e2node.association)
        +-- SetupRefused          the RIC answered it with a failure: cause, wait
                                                              (ric.e2node.association)

    ValueError (what a caller passed is wrong, at the call)
    +-- PublishRefused            XApp.publish does not send a payload       (ric.xapp)
    +-- PatternError              RE2 cannot compile a schema pattern    (ric.a1.regex)
    +-- SimControlError           the simulated world refuses a control  (ric.sim.world)

    RuntimeError
    +-- ChildError                a benchmark child process failed         (ric.bench.proc)

    ConnectionError (the stream a peer broke; handled as any broken connection)
    +-- FrameError                a process xApp's stream carried a bad frame (too large,
                                  or not a message)                (ric.northbound.framed)

    Exception (internal: raised and caught inside ric's own tools and modules)
    +-- HttpFailure               a CLI request to the HTTP API failed; one line to print
    |                                                                      (ric.cliutil)
    +-- Refused                   a request a node turns down, with its E2 cause
    |                                                                (ric.e2node.node)
    +-- _Refused                  an inbound config message answered with an error
    |                                                          (ric.mqtt.config_topic)
    +-- _WorkerGone               a validation worker ended or broke the protocol
    |                                                              (ric.a1.workers)
    +-- AttachRefused             an attach the runtime does not take: a gRPC status
    |                                                           (ric.northbound.server)
    +-- StreamEnded               an attached xApp's stream or process ended
    |                                                             (ric.northbound.host)
    +-- _Gone                     a remote xApp did not come back in its resume window
                                                                  (ric.northbound.host)

Library errors (gRPC, protobuf, pydantic, redis, MQTT) are converted at the boundary with
``from``. ``tests/test_errors.py`` checks that every exception class in the package is drawn
here.
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
