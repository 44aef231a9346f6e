"""The import direction is a contract: `schemas <- bus <- services <- api <- chatbus`, and inside the
edge `app <- routes <- middleware <- commands <- security <- state <- ... <- envelope` (pyproject's
[tool.importlinter]). A function-local import that only hides a cycle fails here too."""

from __future__ import annotations

import os
from pathlib import Path

from importlinter import cli

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_are_kept() -> None:
    cwd = os.getcwd()
    os.chdir(ROOT)  # import-linter reads pyproject.toml from the working directory
    try:
        assert cli.lint_imports(no_cache=True) == 0, "an import breaks the layering (run `lint-imports`)"
    finally:
        os.chdir(cwd)
