"""Runtime configuration: a TOML file, then environment overrides, validated by pydantic.

Environment variables ``RIC_<SECTION>__<KEY>`` override the file, for example
``RIC_E2__PORT=36500`` or ``RIC_XAPPS__LOAD='["kpimon"]'`` (values are read as TOML values,
falling back to plain strings). Every error names the key and the problem.

.. code-block:: toml

    ric_id = "ric"

    [e2]                      # the E2 termination (gRPC)
    host = "127.0.0.1"
    port = 36421
    keep_alive_s = 1.0

    [log]
    level = "info"            # debug | info | warning | error
    format = "text"           # text | json

    [xapps]                   # which xApps run, and how they are hosted
    load = ["kpimon"]         # entry-point names or module:Class references
    queue_size = 256

    [xapps.config.kpimon]     # one xApp's own settings, checked by its Config schema
    print_every_s = 2.0

    [loop]                    # the event-loop watchdog (ric.watchdog)
    stall_warning_ms = 100    # a longer stall is logged while it lasts, naming what runs

    [http]                    # /metrics, /healthz, /readyz, /api/v1 (ric.http)
    enabled = true
    host = "127.0.0.1"
    port = 8080

    [metrics]                 # opt-in series whose number grows with the network
    per_node = false
    per_cell = false

    [mqtt]                    # the MQTT bridge (ric.mqtt), off by default; see the README
    enabled = false
    host = "127.0.0.1"
    port = 1883
    topic_prefix = "ric"
    kpm_metrics = []          # opt-in: TS 28.552 names published per cell

    [trace]                   # record every E2 frame (ric.trace); ric run --record FILE
    record = ""               # trace file to write ("" = off; .gz = compressed)
    flush_interval_s = 1.0

    [sdl]                     # the shared data layer (ric.sdl): runtime state, xApp namespaces
    backend = "memory"        # memory | sqlite (path = "ric-data/sdl.sqlite3") | redis
    url = "redis://127.0.0.1:6379/0"
    key_prefix = "ric"
    shared = { cells = ["mlb", "energysaver"] }   # shared namespace -> xApps allowed

    [cluster]                 # replicas of one RIC on the Redis SDL (ric.cluster), off by default
    enabled = false
    replica_id = ""           # empty: <hostname>:<bound E2 port>
    lease_ttl_s = 6.0         # a replica stops acting lease_ttl_s - 2 x renew_interval_s
    renew_interval_s = 1.0    # after its last renewal (Redis lost)
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ric.errors import ConfigError
from ric.eventloop import LoopChoice

__all__ = [
    "AuditSettings",
    "ClusterSettings",
    "ConflictSettings",
    "E2Settings",
    "HttpSettings",
    "LogSettings",
    "LoopSettings",
    "MetricsSettings",
    "MqttQosSettings",
    "MqttSettings",
    "MqttTlsSettings",
    "RuntimeConfig",
    "SdlSettings",
    "TraceSettings",
    "XAppsSettings",
    "load_config",
    "sentinel_address",
]

ENV_PREFIX = "RIC_"
_METRIC_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]*$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsSettings(_Section):
    """TLS on the E2 port. The server certificate is always presented; with ``client_ca`` set,
    nodes must present a certificate that chains to it and whose subject or SAN is the node id
    they claim. Files are re-read when they change, without a restart."""

    enabled: bool = Field(False, description="serve E2 over TLS (needs cert and key)")
    cert: str = Field("", description="server certificate chain (PEM file)")
    key: str = Field("", description="server private key (PEM file)")
    client_ca: str = Field("", description="CA bundle that node certificates must chain to")
    check_node_identity: bool = Field(
        True, description="a node's certificate must name the node id it claims in setup"
    )

    @model_validator(mode="after")
    def _files_given(self) -> TlsSettings:
        if self.enabled and not (self.cert and self.key):
            raise ValueError("e2.tls.enabled needs e2.tls.cert and e2.tls.key (PEM files)")
        return self


class E2Settings(_Section):
    """The E2 termination: where it listens and how it watches nodes."""

    host: str = Field(
        "127.0.0.1", description="address the E2 port listens on (0.0.0.0: every interface)"
    )
    port: int = Field(36421, ge=0, le=65535, description="the E2 (gRPC) port; 0: any free port")
    keep_alive_s: float = Field(1.0, gt=0, le=60, description="keep-alive interval asked of nodes")
    setup_timeout_s: float = Field(5.0, gt=0, description="time a new stream has to set up")
    error_burst: int = Field(20, ge=1, description="bad messages tolerated at once per node")
    error_refill_per_s: float = Field(1.0, ge=0, description="bad messages tolerated per second")
    max_message_bytes: int = Field(
        4 * 1024 * 1024,
        ge=64 * 1024,
        le=256 * 1024 * 1024,
        description="largest E2 message parsed, in bytes; a larger one is answered with an "
        "ErrorIndication and spends the error budget (gRPC's own cap is 2x this: beyond it gRPC "
        "ends the node's stream with RESOURCE_EXHAUSTED)",
    )
    max_entities_per_matrix: int = Field(
        20_000,
        ge=1,
        description="rows (cells, UEs or slices) one measurement matrix may carry; "
        "a larger matrix is refused with an ErrorIndication",
    )
    max_values_per_batch: int = Field(
        250_000,
        ge=1,
        description="values one IndicationBatch may carry over all its matrices; "
        "a larger batch is refused whole with an ErrorIndication",
    )
    max_values_per_s_per_node: float | None = Field(
        2_000_000.0,
        gt=0,
        description="indication values one node may send per second (burst: one second's "
        "worth); beyond, indications are dropped and the node told at most once a second; "
        "none: no limit",
    )
    max_indications_per_batch: int = Field(
        256,
        ge=1,
        description="indications one IndicationBatch may carry (each costs fixed work); "
        "a batch with more is refused whole with an ErrorIndication",
    )
    max_indications_per_s_per_node: float | None = Field(
        1000.0,
        gt=0,
        description="indications one node may send per second (burst: one second's worth); "
        "beyond, they are dropped as for the value rate; none: no limit",
    )
    tls: TlsSettings = TlsSettings()

    @model_validator(mode="after")
    def _batch_fits_rate(self) -> E2Settings:
        for rate_key, batch_key in (
            ("max_values_per_s_per_node", "max_values_per_batch"),
            ("max_indications_per_s_per_node", "max_indications_per_batch"),
        ):
            rate, most = getattr(self, rate_key), getattr(self, batch_key)
            if rate is not None and rate < most:
                raise ValueError(
                    f"e2.{rate_key} ({rate:g}) is below e2.{batch_key} ({most}): "
                    "a legal batch could never pass the rate limit"
                )
        return self


class LogSettings(_Section):
    """Logging: level and line format."""

    level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="the least severe level logged"
    )
    format: Literal["text", "json"] = Field(
        "text", description="text: for a terminal; json: one object per line, for collectors"
    )


class GrantSettings(_Section):
    """What one xApp may do (patterns are shell-style, e.g. "RRU.*"); omitted: no limit,
    except controls, which must be listed."""

    reports: list[str] | None = Field(
        None, description="report metric names (patterns) the xApp may subscribe to"
    )
    per: list[Literal["cell", "ue", "slice"]] | None = Field(
        None, description="row kinds the xApp may subscribe to"
    )
    controls: list[
        Literal[
            "handover",
            "slice_prb_quota",
            "cell_state",
            "generic",
            "cell_individual_offset",
            "cell_administration",
        ]
    ] = Field(default_factory=list, description="control actions the xApp may send")
    nodes: list[str] | None = Field(None, description="node ids (patterns) it may touch")
    cells: list[str] | None = Field(None, description="cell ids (patterns) it may touch")
    slices: list[str] | None = Field(None, description="slice ids (patterns) it may touch")


IsolationMode = Literal["loop", "thread", "process"]
"""How a loaded xApp is hosted (``[xapps.isolation]``); ``remote`` xApps attach by themselves."""
DEFAULT_ISOLATION: IsolationMode = "thread"
"""The mode of a loaded xApp that ``[xapps.isolation]`` does not name: a blocking call in it
stalls only that xApp, at a small hand-off cost (see the README's isolation table)."""


class XAppsSettings(_Section):
    """Which xApps run and how they are hosted."""

    load: list[str] = Field(default_factory=list, description="entry-point names or module:Class")
    queue_size: int | None = Field(None, ge=1, description="reports an xApp may have waiting")
    control_timeout_s: float = Field(1.0, gt=0, description="default control timeout")
    restart_min_s: float = Field(
        0.1, gt=0, description="first wait before restarting an xApp that raised; it doubles"
    )
    restart_max_s: float = Field(30.0, gt=0, description="... up to this")
    max_restarts: int | None = Field(
        None, ge=0, description="restarts after which the xApp stays failed; unset: no limit"
    )
    max_subscriptions: int | None = Field(
        1000, ge=1, description="(node, report) subscriptions one xApp may hold; none: no limit"
    )
    max_controls_per_s: float | None = Field(
        100.0, gt=0, description="controls one xApp may send per second; none: no limit"
    )
    config: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="xApp name -> its settings ([xapps.config.<xapp>]), checked by its Config",
    )
    require_grants: bool = Field(
        False,
        description="an xApp without a grant may do nothing (else: only granted ones are restricted)",
    )
    grants: dict[str, GrantSettings] = Field(
        default_factory=dict, description="xApp name -> what it may do ([xapps.grants.<xapp>])"
    )
    require_pins: bool = Field(False, description="refuse xApp packages that are not pinned")
    pins: dict[str, str] = Field(
        default_factory=dict,
        description="xApp name -> 'distribution==version' optionally followed by ' sha256:<hex>'",
    )
    handler_budget_ms: float = Field(
        100.0,
        gt=0,
        le=60_000,
        description="a handler call (report, event or timer) longer than this is counted in "
        "ric_xapp_handler_overruns_total and logged; in 'loop' isolation handlers share the "
        "event loop, so one that blocks this long stalls E2 and every other xApp; in "
        "'thread' isolation only its own reports wait, and a call still running past it is "
        "named while it runs",
    )
    max_publish_bytes: int = Field(
        256 * 1024,
        ge=1024,
        le=16 * 1024 * 1024,
        description="largest encoded XApp.publish payload the MQTT bridge is handed; a larger "
        "one is refused, counted and logged (XApp.publish returns False)",
    )
    isolation: dict[str, IsolationMode] = Field(
        default_factory=dict,
        description="how each loaded xApp is hosted ([xapps.isolation] <name> = mode; the key "
        "'default' sets it for the others, 'thread' when unset): 'loop' (on the runtime's "
        "event loop: fastest, for xApps that never block), 'thread' (its own event loop in "
        "its own thread: a blocking call stalls only that xApp) or 'process' (a supervised "
        "child process over the northbound API: a crash or memory blow-up costs only it); "
        "under a virtual clock (ric.testing, the trace harness) every xApp runs in 'loop' "
        "mode, so that replays stay deterministic",
    )

    def isolation_of(self, xapp: str) -> IsolationMode:
        """The isolation mode of the loaded xApp ``xapp``."""
        return self.isolation.get(xapp, self.isolation.get("default", DEFAULT_ISOLATION))

    @model_validator(mode="after")
    def _check_restart(self) -> XAppsSettings:
        if self.restart_max_s < self.restart_min_s:
            raise ValueError("restart_max_s must not be below restart_min_s")
        return self


class NorthboundTlsSettings(_Section):
    """TLS on the northbound TCP port (remote xApps). With ``client_ca`` set, an xApp must
    present a certificate that chains to it and whose subject or SAN names the xApp."""

    enabled: bool = Field(False, description="serve the northbound API over TLS")
    cert: str = Field("", description="server certificate chain (PEM file)")
    key: str = Field("", description="server private key (PEM file)")
    client_ca: str = Field("", description="CA bundle that xApp certificates must chain to")

    @model_validator(mode="after")
    def _files_given(self) -> NorthboundTlsSettings:
        if self.enabled and not (self.cert and self.key):
            raise ValueError(
                "northbound.tls.enabled needs northbound.tls.cert and northbound.tls.key"
            )
        return self


class NorthboundSettings(_Section):
    """The northbound API (``proto/ric/xapp/v1``): how xApps in other processes, on other
    machines or in other languages attach. ``process`` xApps each get a private Unix socket
    pair; ``remote`` ones attach on the TCP port."""

    enabled: bool = Field(True, description="serve the northbound API (process and remote xApps)")
    host: str = Field(
        "127.0.0.1", description="address remote xApps attach to (0.0.0.0: every interface)"
    )
    port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="the TCP port remote xApps attach to (36422 by convention; 0: any free "
        "port); none: no TCP port, so remote attach is opt-in (process xApps attach over "
        "their own socket pairs either way)",
    )
    token_file: str = Field(
        "",
        description="file holding the bearer token remote xApps must present (metadata "
        "'authorization: Bearer <token>'); empty: none asked (keep the port on loopback then)",
    )
    tls: NorthboundTlsSettings = NorthboundTlsSettings()
    max_xapps: int = Field(
        64, ge=1, le=10_000, description="xApps attached at once over the northbound API"
    )
    max_message_bytes: int = Field(
        4 * 1024 * 1024,
        ge=64 * 1024,
        le=256 * 1024 * 1024,
        description="largest northbound message either way (a report batch is split below it)",
    )
    max_credits: int = Field(
        4096, ge=1, description="most reports an xApp may have outstanding (its credit window)"
    )
    max_controls_in_flight: int = Field(
        256, ge=1, description="controls one attached xApp may have awaiting an outcome"
    )
    resume_window_s: float = Field(
        30.0,
        ge=0,
        le=3600,
        description="a remote xApp that detaches keeps its subscriptions and queued reports "
        "this long; reattaching with its resume token within it loses nothing but what the "
        "queue could not hold (counted in a drop marker)",
    )
    hello_timeout_s: float = Field(
        5.0, gt=0, le=60, description="time a new stream has to send its hello"
    )


class LoopSettings(_Section):
    """The event loop (``ric.eventloop``) and its watchdog (``ric.watchdog``), which measures
    the loop's lag and stalls, names what held it, and keeps the RIC from blaming nodes for its
    own stalls."""

    implementation: LoopChoice = Field(
        "auto",
        description="the event loop of `ric run` and of thread-mode xApps: uvloop (chosen by "
        "`make bench`: less CPU per control loop and per report), asyncio, or auto: uvloop "
        "when it can be imported, else asyncio",
    )

    watchdog: bool = Field(
        True, description="run the watchdog (on real time only; never on a virtual clock)"
    )
    tick_ms: float = Field(
        10.0, ge=1.0, le=1000.0, description="how often the watchdog's beat runs on the loop"
    )
    stall_warning_ms: float = Field(
        100.0,
        ge=10.0,
        le=60_000.0,
        description="a stall longer than this is logged once, while it lasts, naming what runs",
    )
    recent_window_s: float = Field(
        60.0,
        ge=1.0,
        le=86_400.0,
        description="window of ric_event_loop_recent_longest_stall_seconds (the longest stall "
        "in the last this many seconds)",
    )


class ConflictSettings(_Section):
    """The conflict arbiter: policy, guard windows per action kind, xApp priorities."""

    enabled: bool = Field(True, description="arbitrate conflicting controls between xApps")
    policy: Literal["first-wins", "priority", "reject-both"] = Field(
        "first-wins", description="which control stands when two xApps conflict"
    )
    window_s: dict[str, float] = Field(
        default_factory=lambda: {
            "handover": 5.0,
            "slice_prb_quota": 10.0,
            "cell_state": 60.0,
            "generic": 5.0,
            "cell_individual_offset": 5.0,
            # A CCC switch-off (or wake-up) holds its cell as long as the RC cell state does.
            "cell_administration": 60.0,
        },
        description="guard window per action kind, seconds ('default' for the others)",
    )
    priority: dict[str, int] = Field(default_factory=dict, description="xApp name -> priority")
    shared_timeout_s: float = Field(
        0.5,
        gt=0,
        le=10,
        description="replicas of a RIC ([cluster]): longest wait for the check in the conflict "
        "window they share in Redis; beyond it the control is refused (fails closed)",
    )


class AuditSettings(_Section):
    """The control audit log."""

    path: str = Field("", description="JSON Lines file to append to; empty: memory only")
    keep: int = Field(1000, ge=1, description="records kept in memory for GET /api/v1/controls")
    fsync: bool = Field(
        False,
        description="fsync after every record (each one then waits for the disk on the event "
        "loop); off: the file is fsynced before each anchor and at close",
    )
    anchor_interval_s: float = Field(
        60.0,
        ge=1.0,
        le=86_400.0,
        description="the chain head (count, hash, time) is anchored in the SDL, the log and "
        "MQTT this often, and at shutdown; records cut after the last anchor go unnoticed",
    )


class HttpSettings(_Section):
    """The runtime's HTTP server: /metrics, /healthz, /readyz and the status API."""

    enabled: bool = Field(True, description="serve /metrics, the probes and the status API")
    host: str = Field(
        "127.0.0.1", description="address the HTTP server listens on (0.0.0.0: every interface)"
    )
    port: int = Field(8080, ge=0, le=65535, description="the HTTP port; 0: any free port")
    readiness_interval_s: float = Field(
        1.0, gt=0, le=60, description="readiness is re-checked (and gRPC health set) this often"
    )
    tls_cert: str = Field("", description="serve HTTPS with this certificate chain (PEM file)")
    tls_key: str = Field("", description="... and this private key (PEM file)")
    client_ca: str = Field(
        "", description="with TLS: a client certificate that chains to this CA authenticates"
    )
    token_file: str = Field("", description="file holding the bearer token that authenticates")
    protect_reads: bool = Field(
        False, description="the status API and /metrics need authentication too"
    )
    client_subjects: list[str] = Field(
        default_factory=list,
        description="client certificates that may write, as 'CN=<name>', 'DNS:<name>', "
        "'IP:<address>', 'URI:<uri>' or 'email:<address>'; empty: any certificate under "
        "client_ca",
    )
    max_body_bytes: int = Field(
        256 * 1024,
        ge=1024,
        le=64 * 1024 * 1024,
        description="largest request body read, in bytes; a larger one is answered 413",
    )
    max_json_depth: int = Field(
        32, ge=2, le=512, description="deepest nesting of arrays and objects in a JSON body (400)"
    )
    max_json_values: int = Field(
        50_000,
        ge=10,
        description="most values (numbers, strings, arrays, objects, ...) in one JSON body (400)",
    )
    max_in_flight: int = Field(
        64,
        ge=1,
        description="requests served at once; beyond, 503 with Retry-After at once (probes "
        "/healthz and /readyz are not counted)",
    )
    max_connections: int = Field(
        128,
        ge=1,
        description="connections served at once; one beyond gets a prepared 503 with "
        "Retry-After before its request is parsed (probes /healthz and /readyz are always "
        "served), so a flood of connections cannot turn into one long turn of the event loop",
    )
    retry_after_s: int = Field(
        1,
        ge=1,
        le=3600,
        description="the Retry-After of a 503 for too many requests or connections at once",
    )
    metrics_cache_s: float = Field(
        1.0,
        ge=0,
        le=60,
        description="a /metrics exposition is served to every scrape within this many seconds "
        "of being built (and to all scrapes that arrive while it is built); 0: only the latter",
    )

    @field_validator("client_subjects")
    @classmethod
    def _check_subjects(cls, value: list[str]) -> list[str]:
        for entry in value:
            kind, sep, name = entry.partition("=" if entry.startswith("CN=") else ":")
            if not sep or not name or kind not in ("CN", "DNS", "IP", "URI", "email"):
                raise ValueError(
                    f"{entry!r} is not 'CN=<name>', 'DNS:<name>', 'IP:<address>', 'URI:<uri>' "
                    "or 'email:<address>'"
                )
        return value

    @model_validator(mode="after")
    def _tls_pair(self) -> HttpSettings:
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("http.tls_cert and http.tls_key go together")
        if self.client_ca and not self.tls_cert:
            raise ValueError("http.client_ca needs TLS (http.tls_cert and http.tls_key)")
        return self


class A1Settings(_Section):
    """The A1 policy service: schema work runs in worker processes, each job with a budget."""

    workers: int = Field(
        2, ge=1, le=64, description="worker processes that check schemas and validate policies"
    )
    budget_s: float = Field(
        2.0,
        gt=0,
        le=600,
        description="time one validation job may run in a worker (a type's schema, a policy, "
        "or all policies of a type on a change); beyond, the worker is killed and replaced, "
        "and the request is answered 503",
    )
    regex_max_mem_bytes: int = Field(
        1024 * 1024,
        ge=64 * 1024,
        le=64 * 1024 * 1024,
        description="memory RE2 may use for one schema pattern; a larger pattern is refused",
    )
    notify_hosts: list[str] = Field(
        default_factory=list,
        description="hosts (names or IP addresses, matched exactly, case-insensitively) a "
        "policy's notificationDestination may point at; empty: every destination is refused "
        "(400), so a PUT cannot make the RIC send requests into the operator's network; "
        "loopback only when listed",
    )
    notify_queue: int = Field(
        1000,
        ge=1,
        le=100_000,
        description="policy status notifications waiting to be sent; beyond, the newest is "
        "dropped and counted",
    )
    notify_retries: int = Field(
        3, ge=0, le=10, description="further attempts after a notification failed"
    )
    notify_retry_min_s: float = Field(
        0.5, gt=0, le=60, description="first wait before a retry; it doubles for each retry"
    )
    notify_retry_max_s: float = Field(
        10.0, gt=0, le=600, description="longest wait between two attempts"
    )
    notify_timeout_s: float = Field(
        5.0, gt=0, le=60, description="time one notification POST may take"
    )

    @field_validator("notify_hosts")
    @classmethod
    def _check_notify_hosts(cls, value: list[str]) -> list[str]:
        out = []
        for entry in value:
            host = entry.strip().lower().removeprefix("[").removesuffix("]")
            try:
                out.append(str(ipaddress.ip_address(host)))
                continue
            except ValueError:
                pass
            if not re.fullmatch(r"[a-z0-9]([a-z0-9.-]{0,252}[a-z0-9])?", host):
                raise ValueError(
                    f"{entry!r} is not a host name or IP address (no scheme, port or path)"
                )
            out.append(host)
        return out


class MetricsSettings(_Section):
    """Prometheus metrics: which series of unbounded count (one per node, per cell) to export.

    Off by default so that 1,000 nodes do not make 1,000s of series. ``per_node`` adds the
    runtime's per-node series; ``per_cell`` lets xApp metrics with a ``cell`` label through
    (``per_node`` those with a ``node`` label and no ``cell`` label).
    """

    per_node: bool = Field(False, description="export the per-node series")
    per_cell: bool = Field(False, description="let xApp metrics with a cell label through")
    max_series: int = Field(
        10_000, ge=1, description="series one xApp metric may have; more are dropped and counted"
    )


class MqttTlsSettings(_Section):
    """TLS to the MQTT broker. The broker's certificate is always verified (there is no key to
    turn that off): against ``ca_file``, or the system's CAs when it is empty."""

    enabled: bool = Field(False, description="connect to the broker over TLS")
    ca_file: str = Field("", description="PEM CA bundle; empty: the system's trusted CAs")
    cert_file: str = Field("", description="PEM client certificate, for mutual TLS")
    key_file: str = Field("", description="PEM key of cert_file (empty: it is in cert_file)")


class MqttQosSettings(_Section):
    """The MQTT QoS (0, 1 or 2) of each kind of message the bridge publishes."""

    state: Literal[0, 1, 2] = Field(1, description="runtime, node and xApp state (retained)")
    kpm: Literal[0, 1, 2] = Field(0, description="per-cell KPM")
    controls: Literal[0, 1, 2] = Field(1, description="finished controls")
    conflicts: Literal[0, 1, 2] = Field(1, description="conflicts between xApps")
    xapps: Literal[0, 1, 2] = Field(0, description="what xApps publish through XApp.publish")
    config: Literal[0, 1, 2] = Field(1, description="replies to inbound config changes")


_TOPIC_LEVEL_BAD = ("+", "#", "\x00")


class MqttSettings(_Section):
    """The MQTT bridge (``ric.mqtt``): off by default, so the default run needs no broker."""

    enabled: bool = Field(False, description="run the MQTT bridge")
    host: str = Field("127.0.0.1", description="the broker's host name or address")
    port: int = Field(1883, ge=1, le=65535, description="the broker's port")
    tls: MqttTlsSettings = MqttTlsSettings()
    username: str = Field("", description="user name at the broker; empty: anonymous")
    password_file: str = Field(
        "", description="file holding the password (never the password in the config)"
    )
    client_id: str = Field("", description="MQTT client id; empty: ric-<ric_id>")
    topic_prefix: str = Field("ric", description="first topic level(s) of everything published")
    qos: MqttQosSettings = MqttQosSettings()
    kpm_metrics: list[str] = Field(
        default_factory=list, description="TS 28.552 names published per cell; empty: no KPM"
    )
    kpm_interval_s: float = Field(
        1.0, ge=0.01, le=3600, description="each cell's KPM is published at most this often"
    )
    queue_size: int = Field(10_000, ge=1, description="messages waiting for the broker")
    keepalive_s: int = Field(30, ge=5, le=3600, description="MQTT keep-alive interval")
    timeout_s: float = Field(5.0, gt=0, le=120, description="connect and publish timeout")
    reconnect_min_s: float = Field(0.5, gt=0, description="reconnect back-off doubles from ...")
    reconnect_max_s: float = Field(30.0, gt=0, description="... up to this")
    inbound_config: bool = Field(
        False, description="apply xApp config changes from <prefix>/config/<xapp>/set"
    )

    password: str | None = Field(
        None, exclude=True, repr=False, description="refused: name a file with password_file"
    )

    @field_validator("password")
    @classmethod
    def _no_password(cls, value: str | None) -> None:
        if value is not None:
            raise ValueError(
                "is not read from the configuration: put the password in a file readable "
                "only by the runtime and name it with password_file"
            )
        return None

    @field_validator("topic_prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        if not value or value.startswith(("/", "$")) or value.endswith("/"):
            raise ValueError("must be topic levels like 'ric' or 'site1/ric', not empty")
        if "//" in value or any(c in value for c in _TOPIC_LEVEL_BAD):
            raise ValueError("must not contain empty levels or the wildcards '+' and '#'")
        return value

    @field_validator("kpm_metrics")
    @classmethod
    def _check_metrics(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _METRIC_NAME.match(name):
                raise ValueError(f"{name!r} is not a measurement name like 'RRU.PrbUsedDl'")
        if len(set(value)) != len(value):
            raise ValueError("a metric is named twice")
        return value

    @model_validator(mode="after")
    def _check_backoff(self) -> MqttSettings:
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must not be below reconnect_min_s")
        if self.tls.key_file and not self.tls.cert_file:
            raise ValueError("tls.key_file needs tls.cert_file")
        return self


class TraceSettings(_Section):
    """Recording of E2 traffic into a trace file (``ric.trace``)."""

    record: str = Field("", description="trace file to write; empty: no recording; .gz: gzip")
    pseudonymize: bool = Field(
        False, description="write UE ids as keyed pseudonyms (key: [privacy] key_file)"
    )
    flush_interval_s: float = Field(
        1.0, gt=0, le=3600, description="buffered frames reach the file this often"
    )


class PrivacySettings(_Section):
    """Pseudonymisation of UE ids that leave the runtime (logs, MQTT, traces, the audit log
    and /api/v1/controls, the demo view); the mapping never leaves the process."""

    pseudonymize_ue_ids: bool = Field(
        False, description="replace UE ids by keyed pseudonyms wherever they leave the runtime"
    )
    key_file: str = Field(
        "", description="file with the HMAC key (16+ bytes); empty: a random key per process"
    )


_SDL_NAMESPACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}$")
_KEY_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$")
_SENTINEL_MASTER = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


def sentinel_address(address: str) -> tuple[str, int]:
    """``(host, port)`` of a Sentinel given as ``host:port`` or ``[v6]:port``; ValueError
    naming the address when it is not one."""
    host, sep, port = address.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{address!r} is not host:port with a port 1-65535")
    if any(c in host for c in "/@[] ") or (":" in host and not address.startswith("[")):
        raise ValueError(f"{address!r} is not host:port (write an IPv6 address as [addr]:port)")
    return host, int(port)


_SDL_RESERVED = ("xapp.", "ric.")


class SdlSettings(_Section):
    """The shared data layer (``ric.sdl``): where the runtime's state and the xApps'
    namespaces live, and which shared namespaces each xApp may use."""

    backend: Literal["memory", "sqlite", "redis"] = Field(
        "memory", description="memory: lost at exit; sqlite: a file; redis: shared by replicas"
    )
    path: str = Field("ric-data/sdl.sqlite3", description="the SQLite file (backend = sqlite)")
    url: str = Field(
        "redis://127.0.0.1:6379/0", description="redis:// or rediss:// URL, without a password"
    )
    password_file: str = Field("", description="file holding the Redis password")
    key_prefix: str = Field("ric", description="first part of every Redis key and channel")
    shared: dict[str, list[str]] = Field(
        default_factory=dict, description="shared namespace -> the xApps allowed to use it"
    )
    probe_interval_s: float = Field(
        1.0, gt=0, le=60, description="how often the backend is probed for readiness (/readyz)"
    )
    sentinels: list[str] = Field(
        default_factory=list,
        max_length=16,
        description="Redis Sentinels as host:port; set: the master is found through them "
        "(url then gives only TLS and the database)",
    )
    sentinel_master: str = Field(
        "",
        validate_default=True,
        description="the master's name in Sentinel (its 'sentinel monitor' name); needs sentinels",
    )
    sentinel_password_file: str = Field(
        "", description="file holding the Sentinels' own password (their requirepass), if any"
    )
    sentinel_term_wait_ms: int = Field(
        500,
        ge=0,
        le=5000,
        description="with sentinels, a node lease's new term must reach a Redis replica within "
        "this (WAIT) or the claim is refused, so a failover cannot repeat a term; 0: no wait",
    )

    @field_validator("sentinels")
    @classmethod
    def _check_sentinels(cls, value: list[str]) -> list[str]:
        for address in value:
            sentinel_address(address)
        return value

    @field_validator("sentinel_master")
    @classmethod
    def _check_sentinel_master(cls, value: str, info: ValidationInfo) -> str:
        sentinels = info.data.get("sentinels")
        if sentinels and not value:
            raise ValueError(
                "must name the master Sentinel monitors when sdl.sentinels is set "
                '(e.g. sentinel_master = "ric")'
            )
        if value and not sentinels and "sentinels" in info.data:
            raise ValueError('needs sdl.sentinels (e.g. sentinels = ["redis-sentinel:26379"])')
        if value and not _SENTINEL_MASTER.match(value):
            raise ValueError("must be 1-64 letters, digits, '_', '.' or '-'")
        if value and info.data.get("url", "").startswith("unix:"):
            raise ValueError("cannot be used with a unix:// sdl.url (Sentinel gives a TCP address)")
        return value

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        scheme, sep, rest = value.partition("://")
        if not sep or scheme not in ("redis", "rediss", "unix"):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        userinfo = rest.split("/", 1)[0].rpartition("@")[0]
        if ":" in userinfo:
            raise ValueError(
                "must not hold a password: put it in a file readable only by the runtime "
                "and name it with sdl.password_file"
            )
        return value

    @field_validator("key_prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        if not _KEY_PREFIX.match(value):
            raise ValueError(
                "must be 1-64 letters, digits, '_', '.', ':' or '-', starting with a letter "
                "or digit"
            )
        return value

    @field_validator("shared")
    @classmethod
    def _check_shared(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, xapps in value.items():
            if not _SDL_NAMESPACE.match(name):
                raise ValueError(f"{name!r} is not a namespace name (letters, digits, _ . : -)")
            if name.startswith(_SDL_RESERVED):
                raise ValueError(
                    f"{name!r} is reserved: xapp.* namespaces are each xApp's own, ric.* "
                    "the runtime's"
                )
            if not all(isinstance(x, str) and x for x in xapps):
                raise ValueError(f"{name!r} must list xApp names")
        return value


_REPLICA_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}$")


class ClusterSettings(_Section):
    """Replicas of one RIC (``ric.cluster``): the ``ric run`` processes with the same
    ``ric_id`` and the Redis SDL form one RIC; each takes the nodes that set up at it with a
    lease whose term only grows. Off by default: one process is the whole RIC."""

    enabled: bool = Field(
        False, description="be one replica of the RIC; needs sdl.backend = 'redis'"
    )
    replica_id: str = Field(
        "",
        description="this replica's id, unique in the RIC; empty: host name:bound E2 port",
    )
    heartbeat_interval_s: float = Field(
        1.0, gt=0, le=60, description="how often this replica renews its membership key"
    )
    member_ttl_s: float = Field(
        5.0,
        gt=0,
        le=600,
        description="a replica whose membership key is this old is gone (its nodes are free)",
    )
    lease_ttl_s: float = Field(
        6.0, gt=0, le=600, description="a node lease not renewed for this long expires"
    )
    renew_interval_s: float = Field(
        1.0, gt=0, le=60, description="how often this replica renews its node leases"
    )
    max_routed_in_flight: int = Field(
        1000,
        ge=1,
        le=100_000,
        description="controls this replica's xApps may have waiting at other replicas (nodes "
        "owned elsewhere); beyond it a control is refused as rate_limited",
    )
    control_stream_maxlen: int = Field(
        10_000,
        ge=100,
        le=1_000_000,
        description="entries kept in each node's control stream and each replica's outcome "
        "stream in Redis (older ones are trimmed)",
    )
    report_stream_maxlen: int = Field(
        1000,
        ge=10,
        le=100_000,
        description="indication batches kept in each node's report stream for other "
        "replicas' xApps (older ones are trimmed; a reader that far behind skips them)",
    )

    @field_validator("replica_id")
    @classmethod
    def _check_replica_id(cls, value: str) -> str:
        if value and not _REPLICA_ID.match(value):
            raise ValueError(
                "must be 1-128 letters, digits, '_', '.', ':' or '-', starting with a letter "
                "or digit (it is part of Redis key names)"
            )
        return value

    @model_validator(mode="after")
    def _check_timing(self) -> ClusterSettings:
        # Three beats per TTL: one late or lost heartbeat does not make a live replica look dead.
        if self.member_ttl_s < 3 * self.heartbeat_interval_s:
            raise ValueError(
                f"member_ttl_s ({self.member_ttl_s:g}) must be at least 3 x "
                f"heartbeat_interval_s ({self.heartbeat_interval_s:g})"
            )
        # A replica stops acting TTL - 2 x renew after its last renewal; that margin must
        # leave at least one more renewal attempt before it gives up.
        if self.lease_ttl_s < 3 * self.renew_interval_s:
            raise ValueError(
                f"lease_ttl_s ({self.lease_ttl_s:g}) must be at least 3 x renew_interval_s "
                f"({self.renew_interval_s:g}): renewals happen well inside the TTL"
            )
        return self

    @property
    def safety_margin_s(self) -> float:
        """Time after the last successful renewal at which this replica stops acting for its
        nodes: ``lease_ttl_s - 2 x renew_interval_s``, so it has stopped before any lease it
        held can expire and be taken over."""
        return self.lease_ttl_s - 2 * self.renew_interval_s


class RuntimeConfig(_Section):
    """The whole runtime configuration."""

    ric_id: str = Field(
        "ric", description="this runtime's id (MQTT client id and payloads, audit anchors)"
    )
    e2: E2Settings = E2Settings()
    log: LogSettings = LogSettings()
    xapps: XAppsSettings = XAppsSettings()
    loop: LoopSettings = LoopSettings()
    http: HttpSettings = HttpSettings()
    a1: A1Settings = A1Settings()
    metrics: MetricsSettings = MetricsSettings()
    conflicts: ConflictSettings = ConflictSettings()
    audit: AuditSettings = AuditSettings()
    mqtt: MqttSettings = MqttSettings()
    trace: TraceSettings = TraceSettings()
    privacy: PrivacySettings = PrivacySettings()
    sdl: SdlSettings = SdlSettings()
    northbound: NorthboundSettings = NorthboundSettings()
    cluster: ClusterSettings = ClusterSettings()

    @field_validator("cluster")
    @classmethod
    def _check_cluster(cls, value: ClusterSettings, info: ValidationInfo) -> ClusterSettings:
        if not value.enabled:
            return value
        sdl = info.data.get("sdl")
        backend = sdl.backend if isinstance(sdl, SdlSettings) else "?"
        if backend != "redis":
            raise ValueError(
                f"cluster.enabled = true needs sdl.backend = 'redis' (the replicas share "
                f"membership, leases and state there), got sdl.backend = {backend!r}"
            )
        ric_id = info.data.get("ric_id", "")
        if not isinstance(ric_id, str) or not _REPLICA_ID.match(ric_id):
            raise ValueError(
                f"cluster.enabled = true needs a ric_id of letters, digits, '_', '.', ':' or "
                f"'-' (it names the RIC's Redis keys), got ric_id = {ric_id!r}"
            )
        return value

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        *,
        environ: Mapping[str, str] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> RuntimeConfig:
        """The configuration in the TOML file ``path``, with ``RIC_*`` variables and
        ``overrides`` applied, as ``ric run --config`` reads it (see ``load_config``)."""
        return load_config(Path(path), environ=environ, overrides=overrides)


def _env_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _apply_env(data: dict[str, Any], environ: Mapping[str, str]) -> dict[str, str]:
    """Merge ``RIC_A__B=value`` variables (and ``RIC_RIC_ID`` for the top-level ``ric_id``)
    into ``data``; returns key -> variable name."""
    origin: dict[str, str] = {}
    for var, text in sorted(environ.items()):
        if var == f"{ENV_PREFIX}RIC_ID":
            data["ric_id"] = text
            origin["ric_id"] = var
            continue
        if not var.startswith(ENV_PREFIX) or "__" not in var:
            continue
        path = [p.lower() for p in var[len(ENV_PREFIX) :].split("__")]
        if not all(path):
            raise ConfigError(var, "environment variable name has an empty part")
        node = data
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(".".join(path), f"{var} sets a key inside a non-table value")
            node = child
        node[path[-1]] = _env_value(text)
        origin[".".join(path)] = var
    return origin


def _key(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load_config(
    path: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> RuntimeConfig:
    """Read ``path`` (if given), apply ``RIC_*`` environment variables, then ``overrides``
    (dotted keys, e.g. ``{"e2.port": 0}``), and validate. Raises ConfigError naming the key."""
    data: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        source = str(path)
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError("--config", f"file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("--config", f"{path} is not valid TOML: {exc}") from None
    origin = _apply_env(data, os.environ if environ is None else environ)
    for dotted, value in (overrides or {}).items():
        node = data
        *parents, last = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
        origin[dotted] = "command line"
    try:
        return RuntimeConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = _key(tuple(err["loc"]))
        where = origin.get(key, source)
        shown = (
            err["type"] != "missing"
            and "input" in err
            and not key.endswith("password")
            and key != "sdl.url"  # may hold a password: never echoed
        )
        got = f", got {err['input']!r}" if shown else ""  # a password is never echoed
        msg = err["msg"][:1].lower() + err["msg"][1:]
        raise ConfigError(key, f"{msg}{got} (from {where})") from None
