"""Unit tests: pure code, no servers."""

import pytest

# The kit's asserts compare event lists; rewritten, a mismatch shows the differing fields.
pytest.register_assert_rewrite("tests.unit.kit")
