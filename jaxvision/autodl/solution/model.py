"""The submission entry: `Model(metadata)` with `train`, `test`, `done_training`.

Infers the domain (model selector), builds that domain's learner with the
meta-learner's options, and runs its anytime cycle. Any exception in
`train`/`test` is logged, sets `done_training` and returns the last good
prediction (DeepWisdom's guard), so a learner bug never loses a run.
"""
from __future__ import annotations

import logging
import traceback

import numpy as np

from jaxvision.autodl.solution import meta_learner, model_selector

log = logging.getLogger("jaxvision.autodl")


class Model:
  """AutoDL submission (autodl.md §3 API)."""

  def __init__(self, metadata, options: dict | None = None):
    self.metadata = metadata
    self.opts = meta_learner.options(options)
    if self.opts["blas_threads"]:
      # multi-threaded BLAS on tiny matrices spins when the cores are shared (100x slower)
      from threadpoolctl import threadpool_limits  # pylint: disable=g-import-not-at-top
      self._blas = threadpool_limits(self.opts["blas_threads"])
    self.domain = model_selector.infer_domain(metadata)
    self.learner = model_selector.make_learner(self.domain, metadata, self.opts)
    if self.opts["warmup_in_init"]:  # compile in __init__, which the protocol does not charge
      try:
        self.learner.warmup()
      except Exception:  # pylint: disable=broad-except
        log.warning("warm-up failed; compiling on first use\n%s", traceback.format_exc())
    self.done_training = False
    self.last_prediction = None
    self.failure = None
    # the results state how each net was initialised (in ingestion.log: ingestion's stdout)
    self.weights = self.learner.init_notes()
    print(f"AutoDL solution ({self.domain}) weights: {self.weights}", flush=True)

  def _fail(self, where: str, e: Exception):
    self.failure = f"{where}: {type(e).__name__}: {e}"
    log.error("learner failed in %s; keeping the last prediction\n%s", where,
              traceback.format_exc())
    self.done_training = True

  def train(self, dataset, remaining_time_budget=None):
    if self.done_training:
      return
    try:
      self.learner.train(dataset, remaining_time_budget)
    except Exception as e:  # pylint: disable=broad-except
      self._fail("train", e)

  def test(self, dataset, remaining_time_budget=None):
    try:
      pred = np.asarray(self.learner.test(dataset, remaining_time_budget), np.float64)
      if not np.all(np.isfinite(pred)):
        raise FloatingPointError("non-finite prediction")
      self.last_prediction = pred
      self.done_training = self.done_training or self.learner.done
    except Exception as e:  # pylint: disable=broad-except
      self._fail("test", e)
      if self.last_prediction is None:
        n = self.metadata_test_size(dataset)
        self.last_prediction = np.zeros((n, self.metadata.get_output_size()))
    return self.last_prediction

  @staticmethod
  def metadata_test_size(dataset) -> int:
    try:
      return len(dataset)
    except TypeError:
      return sum(1 for _ in dataset)
