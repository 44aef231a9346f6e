"""Adapters by channel `adapterType`, and the shared HTTP clients the adapters run on."""

from __future__ import annotations

import httpx

from schemas.llm import ProviderTarget
from services.channels.providers import anthropic, gemini, openai
from services.channels.providers.base import Adapter

ADAPTERS: dict[str, Adapter] = {
    "openai": openai.ADAPTER,
    "claude": anthropic.ADAPTER,
    "gemini": gemini.ADAPTER,
}


def adapter_for(target: ProviderTarget) -> Adapter:
    return ADAPTERS[target.adapter_type]


class HttpClients:
    """One pooled `httpx.AsyncClient` per proxy setting, so channels share connections (and TLS sessions)
    to a provider instead of opening one per call. Timeouts are per request, from each target.

    `proxy=None` honours HTTP(S)_PROXY / NO_PROXY from the environment (`trust_env`); a channel's own
    proxy gets a client of its own, since httpx binds the proxy to the client."""

    def __init__(self, *, limits: httpx.Limits | None = None) -> None:
        self._limits = limits or httpx.Limits(max_connections=200, max_keepalive_connections=50)
        self._clients: dict[str | None, httpx.AsyncClient] = {}

    def client_for(self, target: ProviderTarget) -> httpx.AsyncClient:
        key = target.proxy or None
        client = self._clients.get(key)
        if client is None or client.is_closed:
            if key is None:
                client = httpx.AsyncClient(trust_env=True, limits=self._limits)
            else:
                client = httpx.AsyncClient(proxy=key, limits=self._limits)
            self._clients[key] = client
        return client

    def __len__(self) -> int:
        return len(self._clients)

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()
