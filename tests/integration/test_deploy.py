"""The deployment in deploy/: the compose file is valid, its topology works when started as plain
processes from the same files and environment, the Dockerfile builds only from the repository
and runs as non-root, and the alert rules pass their promtool tests and name real series.

The topology test reads deploy/docker-compose.yml and starts what it describes on loopback:
`ric run --config deploy/ric.toml` with the runtime service's environment (addresses rewritten
to free ports through the same RIC_* variables), the three simulator services' `ric sim`
commands, mosquitto with deploy/mosquitto/mosquitto.conf (only the listener changed) and
prometheus with deploy/prometheus/prometheus.yml (only the target and the token file's path
changed), so Prometheus scrapes a runtime that protects its reads, as in compose. The tests fail,
not skip, when docker-compose, mosquitto, prometheus or promtool is missing (``make test``
installs them).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
import yaml
from redis.exceptions import RedisError

from ric.config import load_config
from ric.http import observability
from ric.metrics import PrometheusSensor
from ric.mqtt import mqtt_bridge
from ric.runtime import Runtime
from tests.conftest import wait_for
from tests.integration.stack import ROOT, free_port, tool
from tests.integration.test_mqtt_bridge import Broker, Subscriber
from tests.integration.test_prometheus import PROMETHEUS_DIR, alert_names, prometheus_server
from tests.sdl.redis_server import RedisServer
from tests.sdl.sentinel_server import redis_sentinel_path

DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
DOCKERFILE = DEPLOY / "Dockerfile"
SIMULATORS = {"sim-acme": "1", "sim-globex": "2", "sim-initech": "3"}
"""The compose file's simulator services and the scenario node each runs."""
REPLICAS = ("ric-1", "ric-2", "ric-3")
"""The replicas of the clustered RIC (profile ``cluster``)."""
SENTINELS = ("redis-sentinel-1", "redis-sentinel-2", "redis-sentinel-3")
"""The profile ``cluster``'s Sentinels."""
CLUSTER = {
    *REPLICAS,
    *SENTINELS,
    "redis-master",
    "redis-replica",
    "sim-cluster-acme",
    "sim-cluster-globex",
    "sim-cluster-initech",
}
"""Every service of the profile ``cluster``."""
TOKEN = "a-test-token-for-the-deployment"
"""The HTTP bearer token the topology test gives the runtime and Prometheus."""
WAIT_S = 20.0
"""Guard against hangs only: how long to wait for any one thing to happen."""

_VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<default>[^}]*))?\}")


def interpolate(value: str, environ: Mapping[str, str] | None = None) -> str:
    """``value`` with ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?error}`` replaced as compose
    does, from ``environ`` (default: nothing set, so the file's defaults)."""
    env = environ or {}

    def one(match: re.Match[str]) -> str:
        name, op, default = match["name"], match["op"], match["default"]
        if env.get(name):
            return env[name]
        if op and op.endswith("?"):
            pytest.fail(f"{COMPOSE.name} requires {name}: {default}")
        return default or ""

    return _VAR.sub(one, value).replace("$$", "$")


def compose_services() -> dict[str, Any]:
    """The services of deploy/docker-compose.yml (YAML merge keys applied)."""
    services: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())["services"]
    return services


def runtime_environment(overrides: Mapping[str, str]) -> dict[str, str]:
    """The runtime service's environment with its defaults, then ``overrides`` (each of which
    the compose file must set too), on top of this process's environment without RIC_*."""
    compose_env = {
        k: interpolate(str(v)) for k, v in compose_services()["runtime"]["environment"].items()
    }
    assert set(overrides) <= set(compose_env), set(overrides) - set(compose_env)
    base = {k: v for k, v in os.environ.items() if not k.startswith("RIC_")}
    return {**base, **compose_env, **overrides}


def ric_command(service: str, replace: Mapping[str, str]) -> list[str]:
    """The `ric` command line of a compose service, with container paths and addresses replaced."""
    args = [interpolate(str(a)) for a in compose_services()[service]["command"]]
    ric = Path(sys.executable).with_name("ric")
    assert ric.exists(), f"{ric} is missing: is the project installed in the virtualenv?"
    return [str(ric), *(replace.get(a, a) for a in args)]


@contextlib.asynccontextmanager
async def processes() -> AsyncIterator[list[tuple[str, asyncio.subprocess.Process]]]:
    """A list to start child processes into; all are stopped (SIGTERM, then SIGKILL) at the end."""
    started: list[tuple[str, asyncio.subprocess.Process]] = []
    try:
        yield started
    finally:
        for _, proc in reversed(started):
            if proc.returncode is None:
                proc.terminate()
        for _, proc in reversed(started):
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def spawn(
    started: list[tuple[str, asyncio.subprocess.Process]],
    name: str,
    argv: list[str],
    workdir: Path,
    env: Mapping[str, str] | None = None,
) -> asyncio.subprocess.Process:
    """Start ``argv`` with its output in ``workdir/<name>.log``."""
    with (workdir / f"{name}.log").open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=log, stderr=subprocess.STDOUT, env=dict(env or os.environ), cwd=workdir
        )
    started.append((name, proc))
    return proc


def logs(workdir: Path) -> str:
    """The tail of every process log, for failure messages."""
    return "\n".join(
        f"--- {p.name}\n{p.read_text(errors='replace')[-1500:]}"
        for p in sorted(workdir.glob("*.log"))
    )


async def get_json(url: str, token: str | None = None) -> Any:
    """GET ``url`` (with bearer ``token``) and decode its JSON body (None when the server cannot
    be reached or does not answer 200)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as response:
            return await response.json() if response.status == 200 else None
    except aiohttp.ClientError:
        return None


async def poll(what: str, check: Any, workdir: Path) -> Any:
    """Await ``check()`` until it returns something truthy; fail naming ``what`` with the logs."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while not (result := await check()):
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for {what}\n{logs(workdir)}")
        await asyncio.sleep(0.1)
    return result


def test_compose_file_is_accepted_by_docker_compose(tmp_path: Path) -> None:
    """`docker-compose config` accepts deploy/docker-compose.yml with every image named in full,
    the simulators only in the profile `sim`, the token as a secret of the runtime and
    Prometheus, and refuses it without the token file or the Grafana admin password."""
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.fail(
            "docker-compose is not installed: run `make test` (it installs Debian's "
            "docker-compose package) or apt-get install docker-compose"
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RIC_", "GRAFANA_"))}
    # --env-file: an operator's deploy/.env must not change what is checked
    empty = tmp_path / "empty.env"
    empty.write_text("")
    token = tmp_path / "http-token"
    token.write_text(TOKEN)
    given = {"GRAFANA_ADMIN_PASSWORD": "test-only", "RIC_HTTP_TOKEN_FILE": str(token)}
    argv = [exe, "-f", str(COMPOSE), "--env-file", str(empty), "config"]
    ok = subprocess.run(argv, env={**env, **given}, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    config = yaml.safe_load(ok.stdout)
    for name, service in config["services"].items():
        registry = service["image"].split("/")[0]
        assert "." in registry or registry == "localhost", f"{name}: {service['image']}"
        profiles = ["sim"] if name in SIMULATORS else ["cluster"] if name in CLUSTER else []
        assert service.get("profiles", []) == profiles, name
    runtime, prometheus = config["services"]["runtime"], config["services"]["prometheus"]
    assert "healthcheck" in runtime  # an OCI image carries no HEALTHCHECK of its own
    assert runtime["environment"]["RIC_HTTP__PROTECT_READS"] == "true"
    for service in (runtime, prometheus):
        assert [s["source"] for s in service["secrets"]] == ["ric-http-token"]
    assert config["secrets"]["ric-http-token"]["file"] == str(token)
    shipped = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    credentials = shipped["scrape_configs"][0]["authorization"]["credentials_file"]
    assert credentials == "/run/secrets/ric-http-token"
    assert runtime["environment"]["RIC_HTTP__TOKEN_FILE"] == credentials
    mounts = {v.split(":")[1] for v in prometheus["volumes"]}
    assert {"/etc/prometheus/prometheus.yml", "/etc/prometheus/alerts.yml"} <= mounts
    assert set(config["services"]) == {
        "runtime",
        *SIMULATORS,
        *CLUSTER,
        "mosquitto",
        "prometheus",
        "grafana",
    }
    assert {"ric-audit", "ric-traces", "ric-data"} <= set(config["volumes"])
    assert "test-only" not in COMPOSE.read_text()
    for missing in given:
        rest = {k: v for k, v in given.items() if k != missing}
        refused = subprocess.run(argv, env={**env, **rest}, capture_output=True, text=True)
        assert refused.returncode != 0 and missing in refused.stderr, refused.stderr


def compose_config(tmp_path: Path, *profiles: str) -> dict[str, Any]:
    """What `docker-compose [--profile P] config` makes of deploy/docker-compose.yml with only the
    two required variables set."""
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.fail("docker-compose is not installed: run `make test` or apt-get install it")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RIC_", "GRAFANA_"))}
    empty = tmp_path / "empty.env"
    empty.write_text("")
    token = tmp_path / "http-token"
    token.write_text(TOKEN)
    env |= {"GRAFANA_ADMIN_PASSWORD": "test-only", "RIC_HTTP_TOKEN_FILE": str(token)}
    flags = [f for p in profiles for f in ("--profile", p)]
    argv = [exe, *flags, "-f", str(COMPOSE), "--env-file", str(empty), "config"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    config: dict[str, Any] = yaml.safe_load(done.stdout)
    return config


def sentinel_conf() -> dict[str, list[str]]:
    """deploy/cluster/sentinel.conf's ``sentinel`` directives: name -> its arguments."""
    out: dict[str, list[str]] = {}
    for line in (DEPLOY / "cluster" / "sentinel.conf").read_text().splitlines():
        words = line.split()
        if len(words) > 2 and words[0] == "sentinel":
            out[words[1]] = words[2:]
    return out


def test_cluster_profile_is_three_replicas_of_one_ric_on_redis_with_sentinel(
    tmp_path: Path,
) -> None:
    """`docker-compose --profile cluster config` accepts the profile: three replicas mount
    deploy/cluster/ric.toml, which loads with each one's environment as one RIC (same ric_id,
    cluster on, distinct replica ids, MQTT client ids and audit files) on the Redis SDL found
    through the profile's three Sentinels by the name they monitor; Redis is a master and its
    replica; the simulators list all three replicas, each starting at another; the replicas'
    leases and membership outlast Sentinel's down-after time."""
    config = compose_config(tmp_path, "cluster")
    services = config["services"]
    assert set(services) >= CLUSTER
    monitor = sentinel_conf()["monitor"]  # <name> <host> <port> <quorum>
    name, host, port, quorum = monitor[0], monitor[1], monitor[2], int(monitor[3])
    assert (host, port) == ("redis-master", "6379") and quorum <= len(SENTINELS) // 2 + 1
    loaded = []
    for replica in REPLICAS:
        service = services[replica]
        mounts = {v.split(":")[1]: v.split(":")[0] for v in service["volumes"]}
        assert mounts["/etc/ric/ric.toml"] == str(DEPLOY / "cluster" / "ric.toml")
        env = {k: str(v) for k, v in service["environment"].items()}
        loaded.append(load_config(DEPLOY / "cluster" / "ric.toml", environ=env))
        assert service["command"] == ["run", "--config", "/etc/ric/ric.toml"]
        assert [s["source"] for s in service["secrets"]] == ["ric-http-token"]
        assert "healthcheck" in service
    assert len({c.ric_id for c in loaded}) == 1
    assert [c.cluster.replica_id for c in loaded] == list(REPLICAS)
    assert len({c.mqtt.client_id for c in loaded}) == len({c.audit.path for c in loaded}) == 3
    for c in loaded:
        assert c.cluster.enabled and c.sdl.backend == "redis" and c.e2.port == 36421
        assert c.sdl.sentinels == [f"{s}:26379" for s in SENTINELS]
        assert c.sdl.sentinel_master == name
    replica_cmd = services["redis-replica"]["command"]
    assert replica_cmd[replica_cmd.index("--replicaof") + 1 :] == ["redis-master", "6379"]
    for sentinel in SENTINELS:
        mounts = {v.split(":")[1]: v.split(":")[0] for v in services[sentinel]["volumes"]}
        assert mounts["/etc/redis/sentinel.conf"] == str(DEPLOY / "cluster" / "sentinel.conf")
    firsts = []
    for sim in ("sim-cluster-acme", "sim-cluster-globex", "sim-cluster-initech"):
        command = services[sim]["command"]
        endpoints = command[command.index("--connect") + 1].split(",")
        assert sorted(endpoints) == [f"{r}:36421" for r in REPLICAS], sim
        firsts.append(endpoints[0])
    assert len(set(firsts)) == 3  # the nodes start spread over the replicas
    # A failover (down-after, then about a second) must not make a replica drop its nodes or
    # look dead: it stops acting safety_margin_s after its last renewal.
    down_s = int(sentinel_conf()["down-after-milliseconds"][1]) / 1000
    for c in loaded:
        assert c.cluster.safety_margin_s > down_s + 2 and c.cluster.member_ttl_s > down_s + 2


async def test_the_shipped_sentinel_conf_runs_and_names_the_master(tmp_path: Path) -> None:
    """deploy/cluster/sentinel.conf, with only the master's address and the folder made local,
    starts a real redis-sentinel that names a real redis-server as the master it monitors."""
    with RedisServer(tmp_path / "redis") as master:
        text = (DEPLOY / "cluster" / "sentinel.conf").read_text()
        port = free_port()
        text = text.replace("redis-master 6379", f"127.0.0.1 {master.port}")
        text = text.replace("port 26379", f"port {port}").replace("dir /data", f"dir {tmp_path}")
        conf = tmp_path / "sentinel.conf"
        conf.write_text(text + "bind 127.0.0.1\n")
        async with processes() as started:
            await spawn(started, "sentinel", [redis_sentinel_path(), str(conf)], tmp_path)

            async def named() -> Any:
                try:
                    async with aioredis.Redis(port=port, socket_timeout=1) as sentinel:
                        found: Any = await sentinel.sentinel_get_master_addr_by_name("ric")
                except (RedisError, OSError):
                    return None
                return found

            host, found_port = await poll("the Sentinel to answer", named, tmp_path)
        assert (bytes(host), int(found_port)) == (b"127.0.0.1", master.port)


def test_dockerfile_installs_only_from_the_repository_and_runs_as_non_root() -> None:
    """deploy/Dockerfile downloads nothing with curl or wget, its final stage installs with pip
    only the wheels built from the repository (--no-index), and it runs as a non-root user."""
    lines: list[str] = []
    for raw in re.sub(r"\\\n", " ", DOCKERFILE.read_text()).splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            lines.append(line)
    assert not [x for x in lines if re.search(r"\b(curl|wget)\b", x)], "downloads in the image"
    stages = [i for i, x in enumerate(lines) if x.upper().startswith("FROM ")]
    assert len(stages) >= 2, "not a multi-stage build"
    final = lines[stages[-1] :]
    assert any(x.startswith("COPY") and "ric/" in x for x in lines[: stages[-1]]), (
        "the builder does not build from the repository's files"
    )
    installs = [x for x in final if re.search(r"\bpip\b.*\binstall\b", x)]
    assert installs, "the final stage installs nothing"
    for line in installs:
        assert "--no-index" in line, f"may download from an index: {line}"
        packages = re.split(r"\binstall\b", line, maxsplit=1)[1].split("&&")[0].split()
        named = [p for p in packages if not p.startswith("-") and "=" not in p]
        assert named and all(p.startswith("/wheels/") and p.endswith(".whl") for p in named), (
            f"installs something other than the built wheels: {line}"
        )
    assert any("from=builder" in x for x in final), "the final stage does not use the builder"
    users = [x.split(None, 1)[1] for x in final if x.upper().startswith("USER ")]
    assert users, "the final stage runs as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}, f"runs as {users[-1]}"
    assert any(x.upper().startswith("HEALTHCHECK") and "/healthz" in x for x in final)
    assert any(
        x.upper().startswith("EXPOSE") and {"36421", "8080"} <= set(x.split()) for x in final
    )
    assert any(x.startswith("ENTRYPOINT") and '"ric"' in x for x in final)


async def test_compose_topology_runs_as_plain_processes(tmp_path: Path) -> None:
    """The compose topology started as processes from deploy/'s files and environment: three
    nodes connect, Prometheus scrapes the runtime (whose reads need the token, as in compose)
    with the token file, MQTT messages flow and mlb sends controls (cell individual offsets by default)."""
    e2_port, http_port = free_port(), free_port()
    token = tmp_path / "http-token"
    token.write_text(f"{TOKEN}\n")
    broker = Broker(tmp_path)
    conf = (DEPLOY / "mosquitto" / "mosquitto.conf").read_text()
    listeners = re.findall(r"(?m)^listener .*$", conf)
    assert listeners == ["listener 1883"], listeners
    broker.conf.write_text(conf.replace(listeners[0], f"listener {broker.port} 127.0.0.1"))
    env = runtime_environment(
        {
            "RIC_E2__HOST": "127.0.0.1",
            "RIC_E2__PORT": str(e2_port),
            "RIC_HTTP__HOST": "127.0.0.1",
            "RIC_HTTP__PORT": str(http_port),
            "RIC_MQTT__HOST": "127.0.0.1",
            "RIC_MQTT__PORT": str(broker.port),
            "RIC_AUDIT__PATH": str(tmp_path / "audit" / "controls.jsonl"),
            "RIC_SDL__PATH": str(tmp_path / "data" / "sdl.sqlite3"),
            "RIC_HTTP__TOKEN_FILE": str(token),
        }
    )
    assert env["RIC_HTTP__PROTECT_READS"] == "true"
    assert env["RIC_MQTT__ENABLED"] == "true" and env["RIC_TRACE__RECORD"] == ""
    prefix = env["RIC_MQTT__TOPIC_PREFIX"]
    (tmp_path / "audit").mkdir()
    url = f"http://127.0.0.1:{http_port}"
    try:
        await broker.start()
        async with (
            Subscriber(broker.port, f"{prefix}/#") as mqtt,
            processes() as started,
        ):
            runtime = ric_command("runtime", {"/etc/ric/ric.toml": str(DEPLOY / "ric.toml")})
            await spawn(started, "runtime", runtime, tmp_path, env)
            await poll("the runtime's /healthz", lambda: get_json(f"{url}/healthz"), tmp_path)
            for service, node in SIMULATORS.items():
                argv = ric_command(
                    service,
                    {
                        "/etc/ric/demo.toml": str(ROOT / "seeds" / "demo.toml"),
                        "runtime:36421": f"127.0.0.1:{e2_port}",
                    },
                )
                assert argv[-2:] == ["--nodes", node], argv
                await spawn(started, service, argv, tmp_path)

            async def three_nodes() -> Any:
                body = await get_json(f"{url}/api/v1/nodes", TOKEN)
                return body if body and len(body["nodes"]) == 3 else None

            nodes = await poll("three nodes in the status API", three_nodes, tmp_path)
            assert await get_json(f"{url}/api/v1/nodes") is None  # 401 without the token
            assert len({n["vendor"] for n in nodes["nodes"]}) == 3, nodes

            target = f"127.0.0.1:{http_port}"
            async with prometheus_server(target, tmp_path, token) as prometheus:

                async def scraped() -> Any:
                    query = f"{prometheus}/api/v1/query?query=ric_e2_nodes_connected%3D%3D3"
                    body = await get_json(query)
                    return body and body["data"]["result"]

                await poll("Prometheus to see ric_e2_nodes_connected == 3", scraped, tmp_path)

            await wait_for(
                lambda: (
                    len(mqtt.on(f"{prefix}/state/nodes/+")) >= 3
                    and bool(mqtt.on(f"{prefix}/kpm/+/+"))
                ),
                timeout=WAIT_S,
                what="node states and KPM over MQTT",
            )
            online = {m.json()["node"] for m in mqtt.on(f"{prefix}/state/nodes/+")}
            assert online == {n["id"] for n in nodes["nodes"]}

            async def mlb_controls() -> Any:
                body = await get_json(f"{url}/api/v1/controls", TOKEN)
                return body and [c for c in body["controls"] if c["xapp"] == "mlb"]

            sent = await poll("mlb's controls in /api/v1/controls", mlb_controls, tmp_path)
            assert sent[0]["outcome"]
            for name, proc in started:
                assert proc.returncode is None, f"{name} exited\n{logs(tmp_path)}"
        assert (tmp_path / "audit" / "controls.jsonl").stat().st_size > 0
    finally:
        await broker.close()


def test_alert_rules_pass_their_promtool_tests() -> None:
    """`promtool test rules` passes deploy/prometheus/alerts.test.yml, which tests every alert of
    alerts.yml both quiet (a healthy runtime) and firing."""
    tests = PROMETHEUS_DIR / "alerts.test.yml"
    run = subprocess.run(
        [tool("promtool"), "test", "rules", tests.name],
        cwd=PROMETHEUS_DIR,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    cases = yaml.safe_load(tests.read_text())["tests"]
    checks = [c for case in cases for c in case["alert_rule_test"]]
    firing = {c["alertname"] for c in checks if c["exp_alerts"]}
    quiet = {c["alertname"] for c in checks if not c["exp_alerts"]}
    assert alert_names() - firing == set(), "alerts never tested firing"
    assert alert_names() - quiet == set(), "alerts never tested quiet"


async def test_alert_rules_name_series_the_runtime_exports(tmp_path: Path) -> None:
    """Every ric_* series and readiness check the alert rules select is exported by a runtime
    built as `ric run` builds it, with the MQTT bridge and an audit file (families without
    samples included)."""
    groups = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())["groups"]
    exprs = [rule["expr"] for group in groups for rule in group["rules"]]
    wanted = {n for e in exprs for n in re.findall(r"\bric_[a-z0-9_]+\b", e)}
    checks = {c for e in exprs for c in re.findall(r'check="([^"]+)"', e)}
    config = load_config(
        environ={},
        overrides={
            "e2.port": 0,
            "http.port": 0,
            "mqtt.enabled": True,
            "mqtt.port": free_port(),  # nothing listens: the check is there, failing
            "audit.path": str(tmp_path / "controls.jsonl"),
        },
    )
    sensors, components = observability(config)
    bridge = mqtt_bridge(config)
    assert bridge is not None
    (metrics,) = [s for s in sensors if isinstance(s, PrometheusSensor)]
    async with Runtime(config, [], sensors=[*sensors, bridge], components=[*components, bridge]):
        families = list(metrics.registry.collect())
    exported = {f.name + ("_total" if f.type == "counter" else "") for f in families}
    assert sorted(wanted - exported) == []
    exported_checks = {
        s.labels["check"] for f in families if f.name == "ric_readiness_check" for s in f.samples
    }
    assert sorted(checks - exported_checks) == []


def _pins(path: Path) -> dict[str, str]:
    """name -> version of a lock file, failing for a pin without a hash."""
    text = path.read_text()
    pins = dict(re.findall(r"(?m)^([A-Za-z0-9._-]+)==(\S+)", text))
    for name in pins:
        block = text.split(f"\n{name}==", 1)[1] if not text.startswith(name) else text
        assert "--hash=sha256:" in block.split("\n    # via", 1)[0], f"{path.name}: {name}"
    return {re.sub(r"[-_.]+", "-", k).lower(): v for k, v in pins.items()}


def test_lock_files_pin_every_dependency_with_hashes() -> None:
    """requirements.lock pins each runtime dependency of pyproject.toml with hashes, the dev lock
    adds each tool at the same versions, and the Dockerfile builds from the runtime lock only."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    def names(requirements: list[str]) -> set[str]:
        return {
            re.sub(r"[-_.]+", "-", re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0]).lower()
            for r in requirements
        }

    runtime = _pins(ROOT / "requirements.lock")
    dev = _pins(ROOT / "requirements-dev.lock")
    assert names(project["dependencies"]) - set(runtime) == set(), "run `make lock`"
    assert names(project["optional-dependencies"]["dev"]) - set(dev) == set(), "run `make lock`"
    assert {k: dev[k] for k in runtime} == runtime
    dockerfile = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    assert re.search(r"pip wheel --require-hashes .*-r requirements\.lock", dockerfile)
