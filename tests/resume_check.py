"""Shared test helper: a run stopped mid-way and resumed ends in the uninterrupted run's state."""
import jax
import numpy as np
import pytest

from jaxvision.core import loop


def state_leaves(state) -> list[np.ndarray]:
  """Every array leaf of a train state except PRNG keys, as numpy."""
  return [np.asarray(x) for x in jax.tree.leaves(state)
          if not jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)]


def smoke_run(config, tmp_path_factory, name: str):
  """One uninterrupted run of `config` in a fresh workdir -> (Trainer, summary, config, workdir)
  (for a module-scoped fixture shared by several assertions)."""
  workdir = str(tmp_path_factory.mktemp(name))
  trainer = loop.Trainer(config, workdir)
  return trainer, trainer.run(), config, workdir


def assert_resumes_exactly(make_config, full: "loop.Trainer", stop_at_step: int,
                           workdir) -> "loop.Trainer":
  """Runs make_config() in `workdir` until it is preempted at `stop_at_step`, resumes it to
  the end in the same workdir, and asserts every leaf of the final state equals the
  uninterrupted Trainer `full`'s bit for bit. Returns the resumed Trainer."""
  with pytest.raises(loop.Preempted):
    loop.train(make_config(), str(workdir), stop_at_step=stop_at_step)
  resumed = loop.Trainer(make_config(), str(workdir))
  resumed.run()
  a, b = state_leaves(full.state), state_leaves(resumed.state)
  assert len(a) == len(b)
  for u, v in zip(a, b):
    np.testing.assert_array_equal(u, v)
  return resumed
