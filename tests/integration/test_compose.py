"""compose.yaml, checked without a Docker engine: it is a valid Compose Specification document, every
chatbus command in it parses with the real CLI parser, and every chatbus process is wired to the NATS
cluster and Postgres by environment variables alone."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from chatbus.cli import build_parser
from services import registry

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "compose.yaml"
# The official schema, vendored verbatim (source and commit in tests/data/README.md).
SCHEMA_FILE = ROOT / "tests" / "data" / "compose-spec.json"

Compose = dict[str, Any]


def load_compose() -> Compose:
    # safe_load resolves the anchors and `<<` merge keys the way Compose does.
    doc = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(doc, dict), "compose.yaml must be a mapping"
    return doc


def schema_errors(doc: Compose) -> list[str]:
    schema = json.loads(SCHEMA_FILE.read_text())
    validator_cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    validator_cls.check_schema(schema)
    validator = validator_cls(schema)
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    ]


def chatbus_services(doc: Compose) -> dict[str, dict[str, Any]]:
    return {
        name: svc
        for name, svc in doc["services"].items()
        if isinstance(svc.get("command"), list) and svc["command"][:1] == ["chatbus"]
    }


def command_errors(doc: Compose) -> list[str]:
    """Each chatbus service's command, run through the real argparse parser (no process started)."""
    errors = []
    parser = build_parser()
    for name, svc in chatbus_services(doc).items():
        argv = svc["command"][1:]
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:
            errors.append(f"service {name!r}: `chatbus {' '.join(argv)}` is rejected by the CLI (exit {exc.code})")
            continue
        unknown = [d for d in getattr(args, "domain", None) or [] if d not in registry.DOMAINS]
        if unknown:
            errors.append(f"service {name!r}: unknown worker domain(s) {unknown}")
    return errors


def environment(svc: dict[str, Any]) -> dict[str, str]:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


@pytest.fixture(scope="module")
def compose() -> Compose:
    return load_compose()


def test_compose_matches_the_compose_specification_schema(compose: Compose) -> None:
    errors = schema_errors(compose)
    assert not errors, "compose.yaml violates the Compose Specification:\n" + "\n".join(errors)


def test_compose_uses_the_compose_specification_not_a_legacy_version(compose: Compose) -> None:
    assert "version" not in compose


def test_every_chatbus_command_parses_with_the_cli(compose: Compose) -> None:
    errors = command_errors(compose)
    assert not errors, "\n".join(errors)


def test_every_process_kind_is_deployed(compose: Compose) -> None:
    commands = {svc["command"][1] for svc in chatbus_services(compose).values()}
    missing = {"edge", "worker", "relay", "migrate"} - commands
    assert not missing, f"compose.yaml runs no `chatbus {'/'.join(sorted(missing))}` service"


def test_chatbus_services_share_one_image_built_from_the_repo(compose: Compose) -> None:
    services = chatbus_services(compose)
    assert {str(svc.get("build")) for svc in services.values()} == {"."}
    assert len({svc.get("image") for svc in services.values()}) == 1
    assert (ROOT / "Dockerfile").is_file()


def test_chatbus_services_are_wired_to_nats_and_postgres_by_environment(compose: Compose) -> None:
    nats_nodes = {name for name, svc in compose["services"].items() if str(svc.get("image", "")).startswith("nats:")}
    assert len(nats_nodes) == 3, f"expected a 3-node NATS cluster, found {sorted(nats_nodes)}"
    for name, svc in chatbus_services(compose).items():
        env = environment(svc)
        for var in ("CHATBUS_NATS_URL", "CHATBUS_DATABASE_URL"):
            assert env.get(var), f"service {name!r} does not set {var}"
        urls = [u.strip() for u in env["CHATBUS_NATS_URL"].split(",") if u.strip()]
        assert len(urls) == 3, f"service {name!r}: CHATBUS_NATS_URL should list three nodes, got {urls}"
        assert {u.removeprefix("nats://").rpartition("@")[2].split(":")[0] for u in urls} == nats_nodes
        assert all(u.startswith("nats://chatbus:${NATS_PASSWORD}@") for u in urls), f"{name!r}: {urls}"
        assert env["CHATBUS_DATABASE_URL"].startswith("postgresql://postgres:${POSTGRES_PASSWORD}@")
        assert "@postgres:5432/" in env["CHATBUS_DATABASE_URL"]
        assert env.get("CHATBUS_JETSTREAM_REPLICAS") == "3", f"service {name!r}: streams must be replicated"
        assert env.get("CHATBUS_JWT_SECRET"), f"service {name!r} does not set CHATBUS_JWT_SECRET"
        assert env.get("CHATBUS_SECRET_KEY"), f"service {name!r} does not set CHATBUS_SECRET_KEY"


def test_nats_nodes_form_one_jetstream_cluster(compose: Compose) -> None:
    for name in ("nats-1", "nats-2", "nats-3"):
        svc = compose["services"][name]
        cmd = svc["command"]
        assert "-js" in cmd and "--cluster_name" in cmd and "--routes" in cmd, name
        assert cmd[cmd.index("--server_name") + 1] == name
        assert cmd[cmd.index("-sd") + 1] == "/data"
        assert any(str(v).split(":")[0] in compose.get("volumes", {}) for v in svc.get("volumes", [])), name


def test_nats_nodes_ping_their_routes_often(compose: Compose) -> None:
    """A hung node must be cut off in seconds (its clients' queue subscriptions with it), not after the
    default 2 minute route pings: every node reads the config that sets them."""
    for name in ("nats-1", "nats-2", "nats-3"):
        svc = compose["services"][name]
        target = svc["command"][svc["command"].index("-c") + 1]
        (source,) = [c["source"] for c in svc["configs"] if c["target"] == target]
        settings = yaml.safe_load(compose["configs"][source]["content"])  # NATS conf, here YAML too
        assert settings == {"ping_interval": "5s", "ping_max": 2}, name


def test_neither_the_bus_nor_the_database_is_open(compose: Compose) -> None:
    """NATS nodes want a user and password, Postgres a scram password; no default password."""
    for name in ("nats-1", "nats-2", "nats-3"):
        cmd = compose["services"][name]["command"]
        assert cmd[cmd.index("--user") + 1] == "chatbus", name
        assert cmd[cmd.index("--pass") + 1].startswith("${NATS_PASSWORD:?"), name
    env = environment(compose["services"]["postgres"])
    assert env["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    assert env["POSTGRES_HOST_AUTH_METHOD"] == "scram-sha-256"


def test_edges_listen_on_all_interfaces_and_are_published(compose: Compose) -> None:
    edges = {n: s for n, s in chatbus_services(compose).items() if s["command"][1] == "edge"}
    assert len(edges) >= 2, "expected at least two edges"
    published = set()
    for name, svc in edges.items():
        args = build_parser().parse_args(svc["command"][1:])
        assert args.host == "0.0.0.0", f"edge {name!r} listens on {args.host}, unreachable from outside"
        for port in svc.get("ports", []):
            host_port, _, container_port = str(port).rpartition(":")
            assert container_port == str(args.port), f"edge {name!r} publishes {port} but listens on {args.port}"
            published.add(host_port)
    assert {"6285", "6286"} <= published


def test_everything_waits_for_a_successful_migrate(compose: Compose) -> None:
    for name, svc in chatbus_services(compose).items():
        if svc["command"][1] == "migrate":
            continue
        dep = (svc.get("depends_on") or {}).get("migrate", {})
        assert dep.get("condition") == "service_completed_successfully", f"{name!r} does not wait for migrate"


def test_the_checks_catch_a_bogus_command(compose: Compose) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["relay"]["command"] = ["chatbus", "frobnicate"]
    errors = command_errors(broken)
    assert errors and "relay" in errors[0] and "frobnicate" in errors[0]
    broken["services"]["relay"]["command"] = ["chatbus", "worker", "--domain", "nonesuch"]
    assert any("nonesuch" in e for e in command_errors(broken))


def test_the_schema_rejects_an_unknown_key(compose: Compose) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["relay"]["bogus_key"] = True
    errors = schema_errors(broken)
    assert any("bogus_key" in e for e in errors), errors
    broken = copy.deepcopy(compose)
    broken["services"]["edge-1"]["depends_on"]["migrate"]["condition"] = "eventually"
    assert schema_errors(broken)
