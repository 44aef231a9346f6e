"""PageCache (api/readcache.py): a page read across a write is never stored; pages expire and are bounded."""

from __future__ import annotations

from api.readcache import MAX_PAGES, PAGE_TTL, PageCache

PATH = "/api/presets"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_page_read_while_a_write_landed_is_not_stored() -> None:
    cache = PageCache()
    generation = cache.generation("presets")  # the read starts
    cache.invalidate("presets")  # a write is answered meanwhile
    cache.put(PATH, b"", generation, b"older")
    assert cache.get(PATH, b"") is None


def test_a_write_voids_every_page_of_its_domain_only() -> None:
    cache = PageCache()
    cache.put(PATH, b"page=1", cache.generation("presets"), b"one")
    cache.put(PATH, b"page=2", cache.generation("presets"), b"two")
    assert cache.get(PATH, b"page=1") == b"one" and cache.get(PATH, b"page=2") == b"two"
    cache.invalidate("chat")
    assert cache.get(PATH, b"page=1") == b"one"
    cache.invalidate("presets")
    assert cache.get(PATH, b"page=1") is None and cache.get(PATH, b"page=2") is None


def test_only_cached_routes_are_stored_and_pages_expire() -> None:
    clock = Clock()
    cache = PageCache(clock)
    cache.put("/api/personalities", b"", 0, b"x")
    assert cache.get("/api/personalities", b"") is None
    cache.put(PATH, b"", 0, b"page")
    clock.now += PAGE_TTL
    assert cache.get(PATH, b"") == b"page"
    clock.now += 0.01
    assert cache.get(PATH, b"") is None


def test_distinct_queries_cannot_grow_the_cache() -> None:
    cache = PageCache()
    for i in range(MAX_PAGES + 50):
        cache.put(PATH, str(i).encode(), 0, b"p")
    assert len(cache._pages) == MAX_PAGES
    assert cache.get(PATH, b"0") is None and cache.get(PATH, str(MAX_PAGES + 49).encode()) == b"p"
