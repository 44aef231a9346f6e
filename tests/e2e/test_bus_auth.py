"""The bus and the database are not open doors: the embedded servers want the generated credentials,
and workers refuse a command whose actor is not a principal."""

from __future__ import annotations

import os
import stat
import uuid
from pathlib import Path

import asyncpg
import nats
import nats.errors
import pytest

from bus import subjects
from chatbus.devstack import EmbeddedNats, EmbeddedPostgres, secret_file
from schemas.envelope import ANONYMOUS, Actor, CommandEnvelope, command_encoder, reply_decoder
from tests.stack import Stack


async def test_embedded_nats_refuses_a_connection_without_credentials(tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path / "nats")
    server.start()
    try:
        with pytest.raises(nats.errors.Error, match="Authorization Violation"):
            await nats.connect(server.bare_url, allow_reconnect=False, connect_timeout=2)
        with pytest.raises(nats.errors.Error, match="Authorization Violation"):
            await nats.connect(
                f"nats://chatbus:wrong@127.0.0.1:{server.port}", allow_reconnect=False, connect_timeout=2
            )
        nc = await nats.connect(server.url, allow_reconnect=False)  # the generated credentials work
        await nc.close()
    finally:
        server.stop()
    secret = secret_file(tmp_path / "nats")
    assert stat.S_IMODE(os.stat(secret).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "nats" / "auth.conf").st_mode) == 0o600


async def test_embedded_postgres_refuses_a_connection_without_the_password(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path / "postgres", durable=False)
    dsn = server.start()
    try:
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{server.port}/chatbus")
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(f"postgresql://postgres:guess@127.0.0.1:{server.port}/chatbus")
        conn = await asyncpg.connect(dsn)
        assert await conn.fetchval("SHOW password_encryption") == "scram-sha-256"
        await conn.close()
    finally:
        server.stop()
    assert stat.S_IMODE(os.stat(secret_file(tmp_path / "postgres")).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "postgres").st_mode) == 0o700


async def test_a_data_dir_from_before_passwords_gets_one(tmp_path: Path) -> None:
    """`chatbus up` data made by an older version (trust auth, no password file) is locked on start."""
    server = EmbeddedPostgres(tmp_path / "postgres", durable=False)
    server.start()
    server.stop()
    secret_file(tmp_path / "postgres").unlink()
    hba = tmp_path / "postgres" / "pg_hba.conf"
    hba.write_text("host all all 127.0.0.1/32 trust\n")
    server = EmbeddedPostgres(tmp_path / "postgres", durable=False)
    dsn = server.start()
    try:
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{server.port}/chatbus")
        conn = await asyncpg.connect(dsn)
        await conn.close()
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("actor", "action"),
    [
        (None, "create"),
        (Actor("", "admin"), "create"),
        (Actor("mallory", "root"), "create"),
        (Actor("mallory", "group:"), "create"),
        (ANONYMOUS, "create"),  # anonymous only for logging in
    ],
)
async def test_a_bus_command_with_a_bogus_actor_is_refused(stack: Stack, actor: Actor | None, action: str) -> None:
    preset = f"bogus-{uuid.uuid4().hex[:8]}"
    nc = await nats.connect(stack.nats_url)
    try:
        envelope = CommandEnvelope(
            command_id=uuid.uuid4(),
            type="presets.create",
            actor=actor,
            payload={"id": preset, "name": "planted"},
        )
        msg = await nc.request(subjects.command("presets", action), command_encoder.encode(envelope), timeout=5)
    finally:
        await nc.close()
    reply = reply_decoder.decode(msg.data)
    assert not reply.ok and reply.error is not None and reply.error.code == "FORBIDDEN", reply
    admin = await stack.admin()
    assert (await admin.get(f"/api/presets/{preset}")).status_code == 404
    # Logging in (the one thing an anonymous actor may do) still works.
    assert await stack.login()
