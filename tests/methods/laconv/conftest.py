"""LaConv tests: tiny modules whose cost is XLA CPU compile time; skip its optimisation passes."""
import jax
import pytest


@pytest.fixture(scope="module", autouse=True)
def _fast_compiles():
  old = jax.config.read("jax_disable_most_optimizations")
  jax.config.update("jax_disable_most_optimizations", True)
  yield
  jax.config.update("jax_disable_most_optimizations", old)
