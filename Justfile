# chatbus recipes; each mirrors a command line in README.md.

# Run the whole system (embedded NATS + Postgres) on 127.0.0.1:6285.
up:
    python3 -m venv .venv && . .venv/bin/activate && pip install -q -e . && chatbus up

# The whole test suite, exactly as the README's Quick start and .ci/run run it.
test:
    python3 -m venv .venv && . .venv/bin/activate && pip install -q -e '.[test]' && python -m pytest -q

# Benchmarks (not tests): prints a table and writes bench-results/*.json.
bench *ARGS:
    . .venv/bin/activate && python -m tests.bench.run {{ARGS}}

# Scale-out: N edges x M workers as separate processes (e.g. `just bench-scale --layouts 1x1,4x4,8x8`).
bench-scale *ARGS:
    . .venv/bin/activate && python -m tests.bench.scale {{ARGS}}

# ruff (lint + format check) and mypy on the project's own code.
lint:
    . .venv/bin/activate && pip install -q -e '.[test,dev]' && ruff check . && ruff format --check . && mypy && lint-imports
