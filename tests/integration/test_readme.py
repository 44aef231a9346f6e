"""The README (and the docs it points to) link nothing outside the repository: a reader of a fresh
clone can follow every reference."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LOCAL_HOSTS = ("127.0.0.1", "localhost", "0.0.0.0")


def test_no_reference_leaves_the_repository() -> None:
    outside = []
    for doc in DOCS:
        text = doc.read_text()
        outside += [f"{doc.name}: {m}" for m in re.findall(r"\.\./[\w./-]+", text)]
        for url in re.findall(r"https?://[^\s`)'\"]+", text):
            if not url.split("://", 1)[1].startswith(LOCAL_HOSTS):
                outside.append(f"{doc.name}: {url}")
    assert not outside, "references outside the repository:\n" + "\n".join(outside)


def test_every_doc_the_readme_names_exists() -> None:
    named = set(
        re.findall(r"`((?:docs|tests|services|bus|api|chatbus|schemas)/[\w./-]+)`", (ROOT / "README.md").read_text())
    )
    missing = sorted(p for p in named if not (ROOT / p).exists() and not (ROOT / p.rstrip("/")).exists())
    assert not missing, f"the README names files that are not in the repository: {missing}"
