"""An httpx transport that sends through aiohttp, for the provider clients.

The adapters keep httpx's interface (requests, streamed responses, `httpx.TransportError`s); only the
wire below changes. httpcore under asyncio runs on anyio and the pure-Python h11 parser: measured on one
core against the bench's instant LLM, ~0.45 ms of CPU per call at 1 in flight and ~0.9-1.7 ms at 32
(its pool's request assignment grows with the number waiting), against ~0.2 ms for aiohttp (C parser,
plain asyncio) at both. At the turn rates of a busy worker that was the largest single cost of a turn.

Memory: importing aiohttp adds ~8.7 MiB RSS to a process, and nats-py imports it in every process
whenever it is installed (its websocket transport), so the edge pays it too.

aiohttp's errors are mapped to the httpx errors httpcore raises in the same situation, so
`errors.transport_error` classifies them as before (timeout, connection, stream interrupted)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import aiohttp
import httpx


def _mapped(exc: Exception) -> httpx.TransportError | None:
    message = str(exc) or type(exc).__name__
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(message)
    if isinstance(exc, aiohttp.SocketTimeoutError | aiohttp.ServerTimeoutError | asyncio.TimeoutError):
        return httpx.ReadTimeout(message)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(message)
    if isinstance(exc, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        return httpx.UnsupportedProtocol(message)
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError | aiohttp.ClientResponseError):
        # The peer closed early or spoke broken HTTP: what httpcore reports as RemoteProtocolError.
        return httpx.RemoteProtocolError(message)
    if isinstance(exc, aiohttp.ClientError | OSError):
        return httpx.ReadError(message)
    return None


@contextmanager
def _httpx_errors() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        mapped = _mapped(exc)
        if mapped is None:
            raise
        raise mapped from exc


class _Body(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _httpx_errors():
            # As the bytes arrive: a streamed reply's first token is not held for a fuller chunk.
            async for chunk in self._response.content.iter_any():
                yield chunk

    async def aclose(self) -> None:
        # A body not read to its end closes the connection rather than return it to the pool.
        self._response.release()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One aiohttp session (its own connection pool, no cookie jar), opened on first use in the
    running loop. Timeouts come per request from httpx (`timeout_for`): connect, read, pool."""

    def __init__(self, limits: httpx.Limits) -> None:
        self._limits = limits
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        session = self._session
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._limits.max_connections or 0,
                keepalive_timeout=self._limits.keepalive_expiry or 5.0,
                ssl=httpx.create_ssl_context(),  # the CA bundle httpx itself would verify against
            )
            # No cookie jar: keys are the only auth, and one session serves every channel.
            session = aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())
            self._session = session
        return session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeout = request.extensions.get("timeout", {})
        body = await request.aread()
        with _httpx_errors():
            response = await self._open().request(
                request.method,
                str(request.url),
                headers=request.headers.multi_items(),
                data=body or None,
                allow_redirects=False,
                auto_decompress=False,  # httpx decodes the content-encoding it asked for
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=timeout.get("pool"),
                    sock_connect=timeout.get("connect"),
                    sock_read=timeout.get("read"),
                ),
            )
        extensions = {"http_version": b"HTTP/1.1"}
        if response.reason:
            extensions["reason_phrase"] = response.reason.encode()
        return httpx.Response(
            response.status, headers=response.raw_headers, stream=_Body(response), extensions=extensions
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
