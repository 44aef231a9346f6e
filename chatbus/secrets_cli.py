"""`chatbus secrets rotate`: a new current key, then every stored secret sealed again under it."""

from __future__ import annotations

import os
import sys

from chatbus.settings import Settings


async def rotate(settings: Settings) -> int:
    from bus import crypto

    if os.environ.get(crypto.ENV_KEY, "").strip():
        # The environment names the key: the operator has set the new one there (old ones in
        # CHATBUS_SECRET_KEYS_OLD or the keyring file); this re-encrypts under it.
        ring = crypto.load(settings.data_dir)
        print(f"re-encrypting under {crypto.ENV_KEY} (key {ring.current})")
    else:
        ring = crypto.rotate_keyring(settings.data_dir)
        print(f"new secret key {ring.current} in {ring.path} ({len(ring.keys) - 1} older kept)")
    crypto.install(ring)
    if settings.database_url:
        return await _reseal(settings.database_url)
    from chatbus.up import embedded_database

    with embedded_database(settings) as dsn:
        return await _reseal(dsn)


async def _reseal(dsn: str) -> int:
    from bus import db
    from services.registry import make_store
    from services.secrets_rotation import reseal_all

    pool = await db.create_pool(dsn, max_size=2)
    try:
        done = await reseal_all(make_store(pool))
    except RuntimeError as exc:
        print(f"rotation failed: {exc}", file=sys.stderr)
        return 1
    finally:
        await pool.close()
    fields = sum(len(f) for f in done["channels"].values())
    print(
        f"re-encrypted {fields} secret fields of {len(done['channels'])} channels"
        f" and {len(done['config'])} config secrets; {len(done.get('mcpServers', []))} MCP servers;"
        f" {len(done.get('plugins', []))} plugin configs"
    )
    return 0
