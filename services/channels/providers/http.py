"""HTTP plumbing shared by the adapters: per-target timeouts, base-URL normalisation, custom headers, one
non-streamed call, and the pooled clients (one per proxy setting) the adapters run on."""

from __future__ import annotations

import functools
import urllib.request
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import msgspec

from schemas.llm import ProviderTarget
from services.channels.providers.errors import (
    bad_response,
    error_from_payload,
    error_from_response,
    parse_error_body,
    transport_error,
)

T = TypeVar("T")


def timeout_for(target: ProviderTarget) -> httpx.Timeout:
    return _timeout(target.connect_timeout_ms, target.read_timeout_ms)


@functools.lru_cache(maxsize=64)
def _timeout(connect_ms: int, read_ms: int) -> httpx.Timeout:
    # Immutable, and a handful of distinct settings: built once each rather than per call.
    connect = connect_ms / 1000
    read = read_ms / 1000
    return httpx.Timeout(connect=connect, read=read, write=read, pool=connect)


@functools.lru_cache(maxsize=1024)
def parsed_url(url: str) -> httpx.URL:
    """An endpoint's URL parsed once (httpx.URL is immutable): httpx parses a string on every call."""
    return httpx.URL(url)


@functools.lru_cache(maxsize=256)
def normalize_url(url: str, default_path: str) -> str:
    """`https://host` -> `https://host<default_path>`; an explicit path is kept; no trailing slash.
    Cached: every call normalises its target's URL, and a channel's URL rarely changes."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError(f"base URL must start with http:// or https://, got {url!r}")
    if not parts.hostname:
        raise ValueError(f"base URL has no host: {url!r}")
    if parts.query or parts.fragment:
        # Endpoint paths are appended to the base; a query string would end up in the middle of them.
        raise ValueError(f"base URL must not carry a query or fragment: {url!r}")
    path = parts.path.rstrip("/") or default_path
    return f"{scheme}://{parts.netloc}{path}"


def with_custom_headers(headers: dict[str, str], target: ProviderTarget) -> dict[str, str]:
    # Custom headers win: a gateway may need its own auth or version header in place of ours.
    if target.custom_headers:
        headers.update(target.custom_headers)
    return headers


_encoder = msgspec.json.Encoder()


def encode_json(body: Any) -> bytes:
    return _encoder.encode(body)


async def request_bytes(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    target: ProviderTarget,
    *,
    headers: dict[str, str],
    body: bytes | None = None,
    params: dict[str, str] | None = None,
    model_route: bool = True,
) -> bytes:
    """One non-streamed call; the 2xx body, or a ProviderError."""
    try:
        response = await http.request(
            method, parsed_url(url), content=body, headers=headers, params=params, timeout=timeout_for(target)
        )
    except httpx.TransportError as exc:
        raise transport_error(exc, target) from exc
    if not 200 <= response.status_code < 300:
        raise error_from_response(response, target, model_route=model_route)
    return response.content


def decode_or_raise(decoder: msgspec.json.Decoder[T], body: bytes, target: ProviderTarget) -> T:
    """Decode a 2xx body; a body that is an error document (some gateways answer 200 with one) is raised
    as that error, anything else unreadable as bad_response."""
    try:
        return decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        upstream = parse_error_body(body)
        if upstream is not None and upstream.message:
            raise error_from_payload(upstream, target) from exc
        raise bad_response(target, f"malformed response: {exc}; body starts {body[:200]!r}") from exc


class _NoCookies(httpx.Cookies):
    """A jar that keeps nothing a response sets. The providers authenticate by key and need no cookie,
    and a client is shared by every channel of a proxy setting, so a cookie one provider set must not
    ride along on another channel's calls. It also spares each response httpx's cookie extraction
    (a urllib Request built per response: a few % of a worker's CPU at high turn rates)."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class _CookielessClient(httpx.AsyncClient):
    """`httpx.AsyncClient` with cookie persistence off (`_NoCookies`); otherwise unchanged."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._jar = _NoCookies()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._jar

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        self._jar = _NoCookies(cookies)


def _environment_proxies() -> bool:
    """Does the environment name a proxy (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, any case)? httpx reads
    the same variables through urllib."""
    return any(scheme in ("http", "https", "all") for scheme in urllib.request.getproxies())


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
            if key is None and not _environment_proxies():
                # aiohttp below (see aiohttp_transport), imported on the first call: an idle process
                # does not carry it. httpx ignores HTTP(S)_PROXY for a client given its own transport,
                # so with a proxy in the environment the client keeps httpx's transport (trust_env).
                from services.channels.providers.aiohttp_transport import AiohttpTransport

                client = _CookielessClient(
                    trust_env=True, limits=self._limits, transport=AiohttpTransport(self._limits)
                )
            elif key is None:
                client = _CookielessClient(trust_env=True, limits=self._limits)
            else:
                client = _CookielessClient(proxy=key, limits=self._limits)
            self._clients[key] = client
        return client

    def __len__(self) -> int:
        return len(self._clients)

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()
