"""This edge's cache of rendered read pages (DESIGN.md "Performance"): a hot list page is answered from
memory, without Postgres and without Litestar's routing, guards, parameter parsing and response
building, by the rate-limit middleware (`api/middleware.py`).

What may be served, and to whom:
- Only pages a route stored (`PageCache.put`) after Litestar validated the request and the handler
  rendered it; the key is the exact path and raw query string, so a page is served only for a request
  Litestar would parse exactly as it did then. A query string never seen is a miss.
- A cached route's page depends on nothing but its query and its domain's read table (it is the same
  for every caller who may see it): `CACHED_ROUTES` names, per path, the domain and that only an admin
  may read it. The fast path runs the same authentication and admin check as `require_admin`; when it
  fails for any reason it does not answer, and Litestar answers the request as usual (errors included).

Kept current by generations, one per domain: a page is stored only if its domain's generation did not
move while the page was read, so a read that raced a write never stores the older page.
- This edge's own commands bump the generation of their domain when the reply arrives (the write is
  committed by then): read-your-write over HTTP on one edge stays exact.
- Every event relayed to this edge (`EventHub`) bumps its domain: a write through another edge shows
  here within the relay's latency.
- PAGE_TTL bounds what neither covers (an event this edge missed across a bus reconnect, a read table
  rebuilt by `chatbus replay`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

# path -> the domain whose read table the page shows. Each is an admin-only route (`require_admin`).
CACHED_ROUTES = {"/api/presets": "presets"}
PAGE_TTL = 1.0
MAX_PAGES = 256


@dataclass(frozen=True)
class Page:
    generation: int
    stored_at: float
    body: bytes


class PageCache:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._generations: dict[str, int] = {}
        self._pages: dict[tuple[str, bytes], Page] = {}
        self.served = 0  # pages answered from here (the middleware counts them)

    def generation(self, domain: str) -> int:
        return self._generations.get(domain, 0)

    def invalidate(self, domain: str) -> None:
        self._generations[domain] = self._generations.get(domain, 0) + 1

    def get(self, path: str, query: bytes) -> bytes | None:
        domain = CACHED_ROUTES.get(path)
        if domain is None:
            return None
        page = self._pages.get((path, query))
        if page is None:
            return None
        if page.generation != self._generations.get(domain, 0) or self.clock() - page.stored_at > PAGE_TTL:
            del self._pages[(path, query)]
            return None
        return page.body

    def put(self, path: str, query: bytes, generation: int, body: bytes) -> None:
        """Store a page read while the domain's generation was `generation` (taken before the read)."""
        domain = CACHED_ROUTES.get(path)
        if domain is None or generation != self._generations.get(domain, 0):
            return  # not a cached route, or a write landed while the page was read: it may be older
        if len(self._pages) >= MAX_PAGES and (path, query) not in self._pages:
            del self._pages[next(iter(self._pages))]  # the oldest: many distinct queries cannot grow memory
        self._pages[(path, query)] = Page(generation, self.clock(), body)
