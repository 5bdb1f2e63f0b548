"""LaConv tests: tiny modules whose cost is XLA CPU compile time; skip its optimisation passes."""
import pytest


@pytest.fixture(scope="module", autouse=True)
def _fast_compiles(fast_compiles):
  yield
