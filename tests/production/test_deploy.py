"""The deployment files: compose files, the Dockerfile, the cluster configuration and the Grafana dashboard.

No Docker engine runs here: the files are parsed, every file and variable they name must exist, the cluster
layout must be consistent across its files, and every dashboard query runs against the real schema in chDB.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from collector.store.clickhouse import Store
from collector.store.migrate import load_migrations
from tests.helpers import ROOT

COMPOSE_FILES = [ROOT / "docker-compose.yml", ROOT / "deploy" / "clickhouse" / "docker-compose.yml"]
CLUSTER_DIR = ROOT / "deploy" / "clickhouse" / "cluster"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "reise-journeys.json"
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-?][^}]*)?\}")


def compose(path: Path) -> dict[str, Any]:
    """One compose file, parsed (anchors and merge keys resolved)."""
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict)
    return doc


def known_settings() -> set[str]:
    """Every REISE_* variable the collector reads (settings.py is the one place it reads them)."""
    return set(re.findall(r'"(REISE_[A-Z_]+)"', (ROOT / "collector" / "settings.py").read_text()))


def strings(node: Any) -> list[str]:
    """Every string in a parsed YAML tree, keys included."""
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in (*strings(k), *strings(v))]
    if isinstance(node, list):
        return [s for item in node for s in strings(item)]
    return [node] if isinstance(node, str) else []


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_file_a_compose_file_names_exists(path: Path) -> None:
    doc = compose(path)
    for name, service in doc["services"].items():
        build = service.get("build")
        if build:
            context = (path.parent / build["context"]).resolve()
            assert (context / build["dockerfile"]).is_file(), name
            assert (context / "pyproject.toml").is_file(), f"{name}: build context is not the repository"
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (path.parent / source).exists(), f"{name}: {source}"
            else:
                assert source in (doc.get("volumes") or {}), f"{name}: undeclared volume {source}"
        for dependency in service.get("depends_on", {}):
            assert dependency in doc["services"], f"{name} depends on unknown {dependency}"


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_variable_a_compose_file_uses_is_known_and_never_silently_empty(path: Path) -> None:
    doc = compose(path)
    settings = known_settings()
    for name, service in doc["services"].items():
        for variable in service.get("environment", {}):
            if variable.startswith("REISE_") and "image" in service and "reise-collector" in service["image"]:
                assert variable in settings, f"{name}: {variable} is not a collector setting"
    for text in strings(doc):
        for variable, modifier in _VARIABLE.findall(text):
            assert modifier, f"${{{variable}}} has neither a default nor a 'required' message"
    readme = (ROOT / "README.md").read_text()
    for variable in {v for text in strings(doc) for v, _ in _VARIABLE.findall(text)}:
        assert variable in readme or variable in settings, f"{variable} is not explained in the README"


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_long_running_services_have_health_checks_and_collectors_keep_their_spool(path: Path) -> None:
    doc = compose(path)
    collectors = 0
    for name, service in doc["services"].items():
        if service.get("restart") == "no":
            continue
        assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
        if service.get("command") == ["serve"]:
            collectors += 1
            spool = service["environment"]["REISE_SPOOL_DIR"]
            mounts = {v.split(":")[1]: v.split(":")[0] for v in service["volumes"]}
            assert mounts.get(spool) in doc["volumes"], f"{name}: the spool is not on a volume"
            assert service["depends_on"], f"{name} starts before its ClickHouse"
    assert collectors >= 1
    spools = [s["volumes"][0].split(":")[0] for s in doc["services"].values() if s.get("command") == ["serve"]]
    assert len(set(spools)) == len(spools), "collectors must not share a spool volume"


def test_the_dockerfile_is_slim_non_root_and_copies_what_exists() -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert re.search(r"^FROM python:[\d.]+-slim\s*$", dockerfile, re.M)
    users = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert users and users[-1] not in ("root", "0")
    for source in re.findall(r"^COPY (?!--)(\S+) ", dockerfile, re.M):
        assert (ROOT / source).exists(), source
    assert "HEALTHCHECK" in dockerfile and 'ENTRYPOINT ["reise"]' in dockerfile
    for variable in re.findall(r"\b(REISE_[A-Z_]+)=", dockerfile):
        assert variable in known_settings()
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and "reise-data" in ignored


def xml(path: Path) -> ET.Element:
    """A ClickHouse XML config file's root element."""
    return ET.parse(path).getroot()


def test_the_cluster_is_two_shards_of_two_replicas_on_three_keepers() -> None:
    config = xml(CLUSTER_DIR / "config.d" / "cluster.xml")
    clusters = config.find("remote_servers")
    assert clusters is not None and len(clusters) == 1
    cluster = clusters[0]
    assert cluster.find("secret") is not None
    shards = cluster.findall("shard")
    assert len(shards) == 2
    placement = {}
    for number, shard in enumerate(shards, start=1):
        assert shard.findtext("internal_replication") == "true"
        replicas = shard.findall("replica")
        assert len(replicas) == 2
        for replica in replicas:
            placement[replica.findtext("host")] = number
    keepers = [(n.findtext("host"), n.findtext("port")) for n in config.findall("zookeeper/node")]
    assert len(keepers) == 3

    services = compose(COMPOSE_FILES[1])["services"]
    for host, shard_number in placement.items():
        macros_file = CLUSTER_DIR / "macros" / f"{host}.xml"
        macros = xml(macros_file).find("macros")
        assert macros is not None
        assert int(macros.findtext("shard") or "0") == shard_number
        assert macros.findtext("replica") == host
        assert macros.findtext("cluster") == cluster.tag
        mounts = services[host]["volumes"]
        assert f"./cluster/macros/{host}.xml:/etc/clickhouse-server/config.d/macros.xml:ro" in mounts
        assert any(m.startswith("./cluster/config.d/cluster.xml:") for m in mounts)
    assert len({xml(CLUSTER_DIR / "macros" / f"{h}.xml").findtext("macros/replica") for h in placement}) == 4

    server_ids = set()
    for host, port in keepers:
        keeper = xml(CLUSTER_DIR / "keeper" / f"{host}.xml").find("keeper_server")
        assert keeper is not None and keeper.findtext("tcp_port") == port
        server_ids.add(keeper.findtext("server_id"))
        raft = {(s.findtext("id"), s.findtext("hostname")) for s in keeper.findall("raft_configuration/server")}
        assert {name for _, name in raft} == {h for h, _ in keepers}
        assert (keeper.findtext("server_id"), host) in raft
        assert f"./cluster/keeper/{host}.xml:/etc/clickhouse-keeper/keeper_config.xml:ro" in services[host]["volumes"]
    assert len(server_ids) == 3

    for name, service in services.items():
        if "REISE_CLUSTER" in service.get("environment", {}):
            assert service["environment"]["REISE_CLUSTER"] == cluster.tag, name
            dsn_host = re.search(r"@(ch-s\dr\d):8123/", service["environment"]["REISE_DSN"])
            assert dsn_host is not None and dsn_host.group(1) in placement, name


def test_every_clickhouse_node_gets_the_insert_settings() -> None:
    profile = xml(ROOT / "deploy" / "clickhouse" / "users.d" / "reise.xml").find("profiles/default")
    assert profile is not None
    assert profile.findtext("deduplicate_blocks_in_dependent_materialized_views") == "1"
    assert profile.findtext("distributed_foreground_insert") == "1"
    for path in COMPOSE_FILES:
        for name, service in compose(path)["services"].items():
            if "clickhouse-server" in service.get("image", ""):
                assert any("users.d/reise.xml:/etc/clickhouse-server/users.d/" in v for v in service["volumes"]), name


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, SQL) of every panel of the Grafana dashboard."""
    doc = json.loads(DASHBOARD.read_text())
    return [(panel["title"], target["rawSql"]) for panel in doc["panels"] for target in panel["targets"]]


def grafana_macros(sql: str) -> str:
    """The SQL with the ClickHouse data source's macros expanded as Grafana would for the last 30 days."""
    sql = re.sub(r"\$__timeFilter\((\w+)\)", r"\1 >= now() - INTERVAL 30 DAY AND \1 <= now()", sql)
    return re.sub(r"\$__timeInterval\((\w+)\)", r"toStartOfInterval(\1, INTERVAL 3600 second)", sql)


def test_the_dashboard_uses_the_provisioned_data_source() -> None:
    provisioned = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/clickhouse.yml").read_text())
    [source] = provisioned["datasources"]
    assert source["type"] == "grafana-clickhouse-datasource"
    doc = json.loads(DASHBOARD.read_text())
    for panel in doc["panels"]:
        assert panel["datasource"]["uid"] == source["uid"], panel["title"]
        assert all(t["datasource"]["uid"] == source["uid"] for t in panel["targets"])
    dashboards = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/reise.yml").read_text())
    grafana = compose(COMPOSE_FILES[0])["services"]["grafana"]
    assert f"./deploy/grafana/dashboards:{dashboards['providers'][0]['options']['path']}:ro" in grafana["volumes"]
    for variable in re.findall(r"\$([A-Z_]+)", json.dumps(source)):
        assert variable in grafana["environment"], variable


def test_every_dashboard_query_runs_on_the_journey_schema(store: Store) -> None:
    queries = dashboard_queries()
    objects = {m.group(1) for mig in load_migrations() for s in mig.statements
               if (m := re.match(r"CREATE (?:MATERIALIZED )?(?:TABLE|VIEW) IF NOT EXISTS (\w+)", s))}
    views = {"customer_journey", "stage_funnel", "contacts_before_purchase"}
    read = {name for _, sql in queries for name in re.findall(r"\bFROM\s+(\w+)", sql)}
    assert views <= read
    assert read <= objects
    for title, sql in queries:
        assert "$__" not in grafana_macros(sql), title
        store.query(grafana_macros(sql))
        described = store.query(f"DESCRIBE ({grafana_macros(sql)})").rows
        assert len(described) >= 1, title
