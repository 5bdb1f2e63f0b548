"""Datasets as random-access records + per-example preprocessing, and the batch pipeline.

Determinism (exact resume): the training stream is a concatenation of
per-epoch permutations, a pure function of (seed, position); batch `s` holds
positions [s*B, (s+1)*B) and process `p` of `P` takes its contiguous slice
[p*B/P, (p+1)*B/P). Augmentation draws from one RNG per (seed, step, process).
So batch `s` is identical whether or not the run was interrupted before it.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Iterator, Optional, Sequence

import numpy as np

from jaxvision.core.method import DataInfo

Example = dict
Records = Sequence[Example]  # len() and [i] -> {"image": ..., "label": ...}


class DataNotReadyError(RuntimeError):
  """The dataset is not prepared in data_dir (and download is off)."""


@dataclasses.dataclass(frozen=True)
class Dataset:
  """A dataset ready to batch.

  train/eval: random-access records. preprocess(example, rng | None, train)
  returns {"image": float32 [H, W, C], "label": int32}; rng is None for eval.
  """
  info: DataInfo
  train: Records
  eval: Records
  preprocess: Callable[[Example, Optional[np.random.Generator], bool], Example]


@functools.lru_cache(maxsize=4)
def _epoch_perm(seed: int, epoch: int, n: int) -> np.ndarray:
  return np.random.default_rng((seed, 7, epoch)).permutation(n)


class Pipeline:
  """Host-local batches for one process.

  Args:
    dataset: the Dataset.
    batch_size: the GLOBAL batch size (must divide by the process count).
    seed: data seed.
    process_index, process_count: this host's slice of every global batch.
    num_threads: threads that assemble batches ahead of the device (grain).
  """

  def __init__(self, dataset: Dataset, batch_size: int, seed: int = 0,
               process_index: int = 0, process_count: int = 1, num_threads: int = 8):
    if batch_size % process_count:
      raise ValueError(f"batch size {batch_size} does not divide over {process_count} processes")
    self.dataset, self.batch_size, self.seed = dataset, batch_size, seed
    self.local = batch_size // process_count
    self.offset = process_index * self.local
    self.process_index, self.process_count = process_index, process_count
    self.num_threads = max(1, num_threads)

  def _index(self, position: int) -> int:
    n = len(self.dataset.train)
    return int(_epoch_perm(self.seed, position // n, n)[position % n])

  def train_batch(self, step: int) -> dict:
    """The local slice of global batch `step` (numpy)."""
    start = step * self.batch_size + self.offset
    rng = np.random.default_rng((self.seed, 11, step, self.process_index))  # one per batch
    prep, records = self.dataset.preprocess, self.dataset.train
    return stack([prep(records[self._index(pos)], rng, True)
                  for pos in range(start, start + self.local)])

  def train_iter(self, start_step: int, end_step: int) -> Iterator[dict]:
    """Batches start_step..end_step-1, assembled by background threads (grain)."""
    import grain
    ds = grain.MapDataset.range(start_step, end_step).map(self.train_batch)
    opts = grain.ReadOptions(num_threads=self.num_threads, prefetch_buffer_size=2 * self.num_threads)
    return iter(ds.to_iter_dataset(opts))

  def eval_iter(self, batch_size: int) -> Iterator[dict]:
    """The eval split in order, padded to whole global batches; "mask" marks real rows.
    Batches are assembled ahead by background threads (grain)."""
    import grain
    if batch_size % self.process_count:
      raise ValueError(f"eval batch size {batch_size} does not divide over {self.process_count} processes")
    n = len(self.dataset.eval)
    ds = grain.MapDataset.range(0, -(-n // batch_size)).map(
        lambda b: self._eval_batch(b, batch_size))
    opts = grain.ReadOptions(num_threads=self.num_threads, prefetch_buffer_size=2 * self.num_threads)
    return iter(ds.to_iter_dataset(opts))

  def _eval_batch(self, index: int, batch_size: int) -> dict:
    local = batch_size // self.process_count
    records, n = self.dataset.eval, len(self.dataset.eval)
    start = index * batch_size + self.process_index * local
    positions = range(start, start + local)
    batch = stack([self.dataset.preprocess(records[min(p, n - 1)], None, False) for p in positions])
    batch["mask"] = np.asarray([1.0 if p < n else 0.0 for p in positions], np.float32)
    return batch


def stack(examples: list[dict]) -> dict:
  return {k: np.stack([e[k] for e in examples]) for k in examples[0]}
