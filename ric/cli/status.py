"""``ric status``: ask a running runtime's HTTP API and print its readiness, nodes and xApps."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from ric.cliutil import EXIT_FAILED, HttpFailure, duration, http_client, table

__all__ = ["cmd_status", "render_status"]


def render_status(
    url: str, ready: Any, nodes: Any, xapps: Any, cluster: Any = None, *, now: float = 0.0
) -> str:
    """The text ``ric status`` prints for the answers of /readyz, /api/v1/nodes, /api/v1/xapps
    and, from a replica of a RIC, /api/v1/cluster (``cluster``; None: no cluster block).
    ``now`` (Unix s; default: the current time) dates the replicas' last heartbeats."""
    if ready.get("ready"):
        head = f"ric at {url}: ready ({len(ready.get('checks', []))} checks pass)"
    else:
        failed = [c for c in ready.get("checks", []) if not c.get("ok")]
        why = ", ".join(
            f"{c['name']} ({c['detail']})" if c.get("detail") else c["name"] for c in failed
        )
        head = f"ric at {url}: NOT READY: {why}"
    lines = [head, ""]
    node_rows = [
        [
            n["id"],
            n["vendor"],
            n["software_version"],
            str(len(n["cells"])),
            ", ".join(f["name"].removeprefix("ORAN-E2SM-") for f in n["ran_functions"]),
            f"{n['indication_rate_per_s']:.1f}" if n.get("connected", True) else "-",
            duration(n["uptime_s"]) if n.get("connected", True) else "down",
        ]
        for n in nodes["nodes"]
    ]
    header = ["NODE", "VENDOR", "SOFTWARE", "CELLS", "RAN FUNCTIONS", "IND/S", "UP"]
    lines += table(header, node_rows, {3, 5, 6}) if node_rows else ["(no E2 nodes connected)"]
    lines.append("")
    xapp_rows = [
        [
            x["name"],
            x["version"],
            x.get("mode", "-"),  # a runtime older than isolation modes does not say
            x["state"],
            f"{x['queue_depth']}/{x['queue_capacity']}",
            str(x["delivered"]),
            str(x["dropped"]),
            str(x["restarts"]),
            str(x.get("overruns", "-")),
            f"{x['subscriptions']['active']}/{x['subscriptions']['total']}",
            _where(x.get("transport") or {}),
        ]
        for x in xapps["xapps"]
    ]
    header = [
        "XAPP",
        "VERSION",
        "MODE",
        "STATE",
        "QUEUE",
        "REPORTS",
        "DROPPED",
        "RESTARTS",
        "OVERRUNS",
        "SUBS",
        "WHERE",
    ]
    lines += table(header, xapp_rows, {4, 5, 6, 7, 8, 9}) if xapp_rows else ["(no xApps loaded)"]
    if cluster is not None:
        lines += ["", *_cluster_lines(cluster, now or time.time())]
    return "\n".join(lines)


def _cluster_lines(cluster: Any, now: float) -> list[str]:
    """The cluster block: the replicas, their last heartbeat and the nodes each owns (with
    each lease's term); or why the cluster's state could not be read."""
    if "error" in cluster:
        return [f"cluster: cannot be read: {cluster['error']}"]
    me = cluster["replica"]
    state = "acting" if cluster["acting"] else f"NOT ACTING: {cluster['reason']}"
    head = f"cluster {cluster['ric_id']}: this is replica {me} ({state})"
    rows = [
        [
            r["id"] + (" *" if r["self"] else ""),
            "alive" if r["alive"] else "gone",
            duration(max(now - r["last_heartbeat_unix_ms"] / 1000.0, 0.0)) + " ago",
            str(r["e2_port"]) if r.get("e2_port") is not None else "-",
            ", ".join(f"{n['node']} (term {n['term']})" for n in r["nodes"]) or "-",
        ]
        for r in cluster["replicas"]
    ]
    header = ["REPLICA", "STATE", "HEARTBEAT", "E2 PORT", "NODES (LEASE TERM)"]
    return [head, *(table(header, rows, {3}) if rows else ["(no replicas heard of)"])]


def _where(transport: dict[str, Any]) -> str:
    """Where an xApp runs, in a few words: its pid, and for an attached xApp its peer and
    flow control (credits left, reports sent but not yet handled)."""
    parts = []
    if transport.get("pid"):
        parts.append(f"pid {transport['pid']}")
    peer = transport.get("peer")
    if peer and not str(peer).startswith("unix:"):
        parts.append(str(peer))
    if "credits" in transport:
        if not transport.get("attached", True):
            parts.append("detached")
        parts.append(
            f"credits {transport['credits']}, unacked {transport.get('unacknowledged', 0)}"
        )
    return "; ".join(parts) or "-"


def cmd_status(args: argparse.Namespace) -> int:
    """``ric status``: 0 when the runtime answered (ready or not), 1 when it cannot be asked."""
    url = args.url
    if url is None:
        from ric.config import load_config

        settings = load_config(args.config).http
        host = "127.0.0.1" if settings.host in ("0.0.0.0", "", "::") else settings.host
        url = f"http://{host}:{settings.port}"
    try:
        client = http_client(args, url, args.timeout)
        _, ready = client.request("GET", "/readyz", ok={503})  # 503: not ready, still JSON
        _, nodes = client.request("GET", "/api/v1/nodes")
        _, xapps = client.request("GET", "/api/v1/xapps")
        # 404: not a replica (or a runtime older than clustering): no cluster block.
        code, cluster = client.request("GET", "/api/v1/cluster", ok={404, 503})
    except HttpFailure as exc:
        print(f"ric status: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if code == 404:
        cluster = None
    elif code == 503:
        cluster = {"error": (cluster or {}).get("detail", "503")}
    if args.json:
        extra = {} if cluster is None else {"cluster": cluster}
        print(json.dumps({"url": url, "readiness": ready, **nodes, **xapps, **extra}, indent=2))
    else:
        print(render_status(url, ready, nodes, xapps, cluster))
    return 0
