"""The panel as the edge serves it (issue 12 item 1), without a browser: `/` is the panel's HTML with a
strict CSP, every module and stylesheet it names is served with the right type from package data,
nothing points outside the edge, and unknown panel pages fall back to index.html."""

from __future__ import annotations

import re
import tomllib
from fnmatch import fnmatch
from pathlib import Path

from api.routes.panel import PANEL, STATIC
from tests.stack import Stack

ROOT = Path(__file__).resolve().parents[2]


async def test_root_serves_the_panel_and_all_its_modules(stack: Stack) -> None:
    c = stack.client()
    r = await c.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "'unsafe-inline'" not in csp and "frame-ancestors 'none'" in csp
    assert r.headers["cache-control"] == "no-cache"
    prefix = f"/panel/{PANEL.digest}/"
    assert f'src="{prefix}app.js"' in r.text and "{{" not in r.text

    # Every file, fetched under the digest the page names: the right type, cached for good.
    for rel, asset in PANEL.assets.items():
        a = await c.get(prefix + rel)
        assert a.status_code == 200, rel
        assert a.content == asset.body
        if rel.endswith(".js"):
            assert a.headers["content-type"].startswith("text/javascript"), rel
            assert "immutable" in a.headers["cache-control"]
        # A revalidation answers 304.
        again = await c.get(prefix + rel, headers={"If-None-Match": a.headers["etag"]})
        assert again.status_code == 304

    # An old digest still gets today's file, but not for keeps; a panel page path gets the HTML.
    old = await c.get("/panel/000000000000/app.js")
    assert old.status_code == 200 and old.headers["cache-control"] == "no-cache"
    page = await c.get("/panel/channels")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    missing = await c.get(prefix + "nope.js")
    assert missing.status_code == 404 and missing.json()["code"] == "NOT_FOUND"

    # The login link lands on the panel.
    assert (await c.get("/login/token", params={"token": "bad"}, follow_redirects=False)).status_code in (401, 400)


def test_nothing_is_fetched_from_outside_and_no_api_string_becomes_html() -> None:
    for path in STATIC.rglob("*"):
        if path.suffix not in (".js", ".css", ".html") or "vendor" in path.parts:
            continue
        text = path.read_text()
        assert not re.search(r"""["'(]\s*(https?:)?//""", text), f"{path} names an outside URL"
        assert "dangerouslySetInnerHTML" not in text and "innerHTML" not in text, path
        assert not re.search(r"\beval\(|new Function\(", text), path


def test_every_panel_file_is_package_data() -> None:
    """A non-editable install must carry every file under api/panel/static."""
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["api"]
    api_dir = ROOT / "api"
    for path in STATIC.rglob("*"):
        if path.is_file():
            rel = path.relative_to(api_dir).as_posix()
            assert any(fnmatch(rel, p) and rel.count("/") == p.count("/") for p in patterns), rel
    for name in ("LICENSE-preact", "LICENSE-htm"):
        assert (STATIC / "vendor" / name).is_file()
