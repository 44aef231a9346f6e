"""The import direction is a contract: `schemas <- bus <- services <- api <- chatbus`, and inside the
edge `app <- routes <- middleware <- commands <- security <- state <- ... <- envelope` (pyproject's
[tool.importlinter]). A function-local import that only hides a cycle fails here too."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_are_kept() -> None:
    # In a child process: import-linter configures logging with dictConfig, which disables every
    # logger that exists already (chatbus.*), and later tests in this process would see no log lines.
    # It reads pyproject.toml from the working directory.
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True))",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, f"an import breaks the layering (run `lint-imports`):\n{run.stdout}{run.stderr}"
