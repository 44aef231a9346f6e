"""The module registry is the one place a domain is added: nothing may be reachable only by luck.

An event Struct no module declares would be refused by the store; a read table no projection
keeps would be left out of `replay`; a projection no module lists would never run."""

from __future__ import annotations

import importlib
import pkgutil
import re
import types
import typing

import msgspec
import pytest

import schemas
from bus import migrate
from bus.events import EventCatalog, UnknownEventType
from bus.eventstore import NewEvent, StreamAppend
from services import registry

# Tables that belong to the infrastructure, not to any domain's projections.
INFRASTRUCTURE_TABLES = {"events", "processed_commands", "checkpoints", "instance_secrets", "logs"}
# Counters the message pipeline bumps per message: kept out of the event log (hot), not replayed.
INFRASTRUCTURE_TABLES |= {"platform_stats", "pipeline_usage", "pipeline_messages", "pipeline_presets"}
# Uploaded plugin archives by sha256: content-addressed bytes that PluginInstalled events name.
INFRASTRUCTURE_TABLES |= {"plugin_blobs"}
# Unions named *Event that are not stored events: a provider's stream deltas never reach the log.
NOT_STORED = {"llm.StreamEvent"}


def _event_unions() -> dict[str, tuple[type[msgspec.Struct], ...]]:
    """`<Domain>Event` union aliases declared by every `schemas.<module>`."""
    found: dict[str, tuple[type[msgspec.Struct], ...]] = {}
    for info in pkgutil.iter_modules(schemas.__path__):
        module = importlib.import_module(f"schemas.{info.name}")
        for name, value in vars(module).items():
            key = f"{info.name}.{name}"
            if name.endswith("Event") and isinstance(value, types.UnionType) and key not in NOT_STORED:
                found[key] = typing.get_args(value)
    return found


def test_every_event_union_member_is_declared_by_exactly_its_module() -> None:
    unions = _event_unions()
    assert unions, "no <Domain>Event unions found in schemas/"
    declared = {t.struct for t in registry.CATALOG}
    for union, members in unions.items():
        missing = [m.__name__ for m in members if m not in declared]
        assert not missing, f"{union}: {missing} are declared by no DomainModule in services/registry.py"
        assert len({registry.CATALOG.domain_of(m.__name__) for m in members}) == 1, f"{union} spans domains"
    in_unions = {m for members in unions.values() for m in members}
    assert declared == in_unions, "every declared event belongs to its domain's <Domain>Event union"


def test_module_names_are_the_package_names_and_unique() -> None:
    names = [m.name for m in registry.MODULES]
    assert len(names) == len(set(names))
    for module in registry.MODULES:
        assert re.fullmatch(r"[a-z][a-z_]*", module.name), module.name
        assert importlib.import_module(f"services.{module.name}").MODULE is module


def test_every_read_table_is_kept_by_a_module_projection() -> None:
    created: set[str] = set()
    for _number, _name, sql in migrate.available_migrations():
        created |= set(re.findall(r"CREATE TABLE (\w+)", sql))
    kept = {t for m in registry.MODULES for t in m.tables}
    assert created - INFRASTRUCTURE_TABLES == kept, "read tables and module projections disagree"


def test_projections_handle_only_declared_events_and_each_is_listed_once() -> None:
    assert len({p.name for p in registry.PROJECTIONS}) == len(registry.PROJECTIONS)
    for projection in registry.PROJECTIONS:
        assert projection.event_types <= {t.name for t in registry.CATALOG}


def test_catalog_refuses_undeclared_types_and_decodes_with_upcasters() -> None:
    class Renamed(msgspec.Struct):
        title: str

    catalog = EventCatalog.of("demo", Renamed, Renamed={1: lambda d: {"title": d.pop("name")}})
    assert catalog.get("Renamed").version == 2
    assert catalog.decode("Renamed", 1, {"name": "old"}) == Renamed(title="old")
    assert catalog.decode("Renamed", 2, {"title": "new"}) == Renamed(title="new")
    with pytest.raises(UnknownEventType):
        catalog.decode("Nope", 1, {})
    with pytest.raises(ValueError):
        EventCatalog.of("a", Renamed).merge(EventCatalog.of("b", Renamed))


def test_store_refuses_an_event_no_module_declares() -> None:
    store = registry.make_store(pool=None)  # type: ignore[arg-type]  # only the type check runs here
    with pytest.raises(UnknownEventType):
        store._checked([StreamAppend("thing-1", 0, [NewEvent("NobodyDeclaresMe", {})])])
    checked = store._checked([StreamAppend("preset-x", 0, [NewEvent("PresetDeleted", {"id": "x"})])])
    assert checked[0].events[0].schema_version == registry.CATALOG.get("PresetDeleted").version
