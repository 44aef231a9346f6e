"""The plugins deciders, the command registry and the archive checks, given/when/then."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from schemas.errors import DomainError
from schemas.plugins import (
    CommandRenamed,
    CommandToggled,
    ConflictResolved,
    PluginConfigured,
    PluginDisabled,
    PluginEnabled,
    PluginInstalled,
    PluginReloaded,
    PluginRemoved,
)
from services.plugins import artifact, commands, domain, launcher
from services.plugins.commands import PluginCommands
from services.plugins.domain import PluginState
from services.plugins.pack import pack
from services.tools.registry import mcp_tool_name
from tests.fakes.plugins import EXAMPLE, example_manifest, example_zip, zip_files
from tests.unit.kit import Kit

kit = Kit(domain.evolve, PluginState("echo-weather"))
MANIFEST = example_manifest()
INSTALLED = PluginInstalled(name="echo-weather", version="1.0.0", digest="a" * 64, size=10, manifest=MANIFEST)


def test_install_once_then_only_with_overwrite() -> None:
    given = kit.given()
    given.when(domain.decide_install, "a" * 64, 10, MANIFEST, "1.0.0", False).then(INSTALLED)
    kit.given(INSTALLED).when(domain.decide_install, "b" * 64, 10, MANIFEST, "2", False).then_error("CONFLICT")
    kit.given(INSTALLED).when(domain.decide_install, "a" * 64, 10, MANIFEST, "1.0.0", True).then_nothing()
    new = PluginInstalled(name="echo-weather", version="2", digest="b" * 64, size=10, manifest=MANIFEST)
    kit.given(INSTALLED).when(domain.decide_install, "b" * 64, 10, MANIFEST, "2", True).then(new)


def test_enable_disable_reload_remove() -> None:
    on = kit.given(INSTALLED).when(domain.decide_enable, True).then(PluginEnabled(name="echo-weather"))
    on.when(domain.decide_enable, True).then_nothing()
    on.when(domain.decide_reload).then(PluginReloaded(name="echo-weather", revision=1)).when(domain.decide_reload).then(
        PluginReloaded(name="echo-weather", revision=2)
    )
    on.when(domain.decide_enable, False).then(PluginDisabled(name="echo-weather"))
    gone = on.when(domain.decide_remove).then(PluginRemoved(name="echo-weather"))
    gone.when(domain.decide_enable, True).then_error("PLUGIN_NOT_FOUND")


def test_config_is_checked_against_the_schema_with_its_path() -> None:
    given = kit.given(INSTALLED)
    given.when(domain.decide_configure, {"unit": "F"}).then(PluginConfigured(name="echo-weather", config={"unit": "F"}))
    error = given.when(domain.decide_configure, {"unit": "K", "greeting": 3}).then_error("VALIDATION_ERROR")
    assert [d["field"] for d in error.details or []] == ["config.greeting", "config.unit"]
    given.when(domain.decide_configure, {"other": 1}).then_error("VALIDATION_ERROR")
    given.when(domain.decide_configure, {"greeting": "x" * 8000}).then_error("VALIDATION_ERROR")


def registry(*names: str, overrides: dict[str, dict[str, object]] | None = None) -> list[commands.Handler]:
    plugins = [PluginCommands(n, example_manifest(name=n)) for n in names]
    return commands.handlers(plugins, overrides or {}, mcp_tool_name)


def test_conflicts_resolve_builtin_first_then_enabling_order() -> None:
    handlers = registry("first", "second")
    assert commands.resolve(handlers, "weather").handler_full_name == "first.weather"  # type: ignore[union-attr]
    assert commands.resolve(handlers, "帮助").plugin == "builtin"  # type: ignore[union-attr]
    assert sorted(commands.conflicts(handlers)) == ["echo", "weather", "天气"]
    assert commands.summary(handlers)["summary"]["conflicts"] == 3


def test_resolve_strategies() -> None:
    handlers = registry("first", "second")
    events = commands.decide_resolve(handlers, "weather", "keep_second", None)
    assert events == [
        CommandToggled(handler_full_name="first.weather", enabled=False),
        ConflictResolved(conflict_key="weather", strategy="keep_second", kept="second.weather"),
    ]
    events = commands.decide_resolve(handlers, "weather", "alias_second", None)
    assert events[0] == CommandRenamed(handler_full_name="second.weather", new_name="weather_second", aliases=[])
    renamed = registry("first", "second", overrides={"second.weather": {"new_name": "weather_second", "aliases": []}})
    assert "weather" not in commands.conflicts(renamed)
    with pytest.raises(DomainError) as caught:
        commands.decide_resolve(renamed, "weather", "keep_first", None)
    assert caught.value.code == "NOT_FOUND"


def test_rename_onto_a_taken_word_is_a_conflict() -> None:
    handlers = registry("first")
    with pytest.raises(DomainError) as caught:
        commands.decide_rename(handlers, "first.echo", "帮助", None)
    assert caught.value.code == "CONFLICT" and caught.value.status == 409
    assert commands.decide_rename(handlers, "first.echo", "say", ["说"]) == [
        CommandRenamed(handler_full_name="first.echo", new_name="say", aliases=["说"])
    ]
    with pytest.raises(DomainError):
        commands.decide_rename(handlers, "first.echo", "two words", None)


@pytest.mark.parametrize(
    ("files", "links", "reason"),
    [
        ({"chatbus-plugin.json": "{}", "a/../../x": "x"}, {}, "`..`"),
        ({"chatbus-plugin.json": "{}", "C:/x": "x"}, {}, "absolute"),
        ({"chatbus-plugin.json": "{}", "a\\..\\x": "x"}, {}, "bad entry"),
        ({"chatbus-plugin.json": "{}"}, {"l": "../../etc"}, "link"),
        ({"chatbus-plugin.json": json.dumps({**MANIFEST, "configSchema": {"type": 5}})}, {}, "configSchema"),
        ({"chatbus-plugin.json": json.dumps({**MANIFEST, "name": "../x"})}, {}, "name"),
        ({"chatbus-plugin.json": json.dumps({**MANIFEST, "extra": 1})}, {}, "extra"),
    ],
)
def test_bad_archives(files: dict[str, str], links: dict[str, str], reason: str) -> None:
    with pytest.raises(DomainError) as caught:
        artifact.inspect(zip_files(files, links=links))  # type: ignore[arg-type]
    assert reason in caught.value.message


def test_zip_bomb_is_refused_before_unpacking() -> None:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("chatbus-plugin.json", json.dumps(MANIFEST))
        archive.writestr("bomb", b"\0" * (artifact.MAX_UNCOMPRESSED + 1))
    assert len(buffer.getvalue()) < artifact.MAX_ZIP_BYTES
    with pytest.raises(DomainError, match="unpacks to more"):
        artifact.inspect(buffer.getvalue())


def test_extract_is_digest_addressed_and_pack_is_reproducible(tmp_path: Path) -> None:
    data = example_zip()
    checked = artifact.inspect(data)
    folder = artifact.extract(data, tmp_path, checked.digest)
    assert folder == tmp_path / checked.digest and (folder / "server.py").is_file()
    assert artifact.extract(data, tmp_path, checked.digest) == folder
    assert pack(EXAMPLE) == pack(EXAMPLE)
    assert artifact.inspect(pack(EXAMPLE)).manifest.name == "echo-weather"


def test_launcher_sets_hard_limits_then_execs() -> None:
    code = "import resource; print(resource.getrlimit(resource.RLIMIT_NOFILE))"
    argv = [sys.executable, launcher.__file__, "--nofile", "32", "--cpu", "100", "--", sys.executable, "-c", code]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30, env={"PATH": os.environ["PATH"]})
    assert out.stdout.strip() == "(32, 32)", out.stderr


def test_chatbus_plugin_pack_writes_the_upload_zip(tmp_path: Path) -> None:
    out = tmp_path / "ew.zip"
    done = subprocess.run(
        [sys.executable, "-m", "chatbus", "plugin", "pack", str(EXAMPLE), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == pack(EXAMPLE)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "chatbus-plugin.json").write_text(json.dumps({"name": "x"}))
    done = subprocess.run([sys.executable, "-m", "chatbus", "plugin", "pack", str(bad)], capture_output=True, text=True)
    assert done.returncode == 1 and "missing required field `version`" in done.stderr
    assert "Traceback" not in done.stderr


def test_schema_marked_secrets_are_found_and_masked() -> None:
    from services.plugins.domain import secret_paths, shown_config

    schema = {
        "type": "object",
        "properties": {
            "pin": {"type": "string", "writeOnly": True},
            "db": {"type": "object", "properties": {"pass": {"type": "string", "format": "password"}}},
            "tags": {"type": "array", "items": {"type": "string", "writeOnly": True}},
            "unit": {"type": "string"},
        },
    }
    assert secret_paths(schema) == {"pin", "db.pass", "tags"}
    config = {"pin": "123456789012", "db": {"pass": "hunter2"}, "tags": ["abc"], "unit": "C", "apiKey": "sk-x-12345678"}
    assert shown_config(config, schema) == {
        "pin": "****9012",
        "db": {"pass": "****"},
        "tags": ["****"],
        "unit": "C",
        "apiKey": "sk-****5678",
    }
