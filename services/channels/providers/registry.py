"""Adapters by channel `adapterType`. `HttpClients` lives in `http`; it is re-exported here for its old importers."""

from __future__ import annotations

from schemas.llm import ProviderTarget
from services.channels.providers import anthropic, gemini, openai
from services.channels.providers.base import Adapter
from services.channels.providers.http import HttpClients as HttpClients

ADAPTERS: dict[str, Adapter] = {
    "openai": openai.ADAPTER,
    "claude": anthropic.ADAPTER,
    "gemini": gemini.ADAPTER,
}


def adapter_for(target: ProviderTarget) -> Adapter:
    return ADAPTERS[target.adapter_type]
