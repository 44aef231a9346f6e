"""LLM provider adapters: the OpenAI, Anthropic and Gemini wire protocols over httpx, streamed and not."""

from services.channels.providers.base import Adapter
from services.channels.providers.errors import ErrorKind, ProviderError
from services.channels.providers.registry import ADAPTERS, HttpClients, adapter_for

__all__ = ["ADAPTERS", "Adapter", "ErrorKind", "HttpClients", "ProviderError", "adapter_for"]
