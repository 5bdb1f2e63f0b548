"""Datasets as random-access keyed records, batch preprocessing ops, and the batch pipeline.

A record is a dict with any keys (`image`, `label`, `lr`, `hr`, `trimap`, `alpha`, `mask`,
`video_id`...). The pipeline gathers the records of a batch, collates them into a dict of
arrays (a list where examples differ in shape), and runs the split's pp string
(`jaxvision.data.pp`) on the whole batch.

Determinism (exact resume): the training stream is a concatenation of
per-epoch permutations, a pure function of (seed, position); batch `s` holds
positions [s*B, (s+1)*B) and process `p` of `P` takes its contiguous slice
[p*B/P, (p+1)*B/P). Augmentation draws from one RNG per (seed, step, process).
So batch `s` is identical whether or not the run was interrupted before it.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Iterator, Sequence

import numpy as np

from jaxvision.core.method import DataInfo
from jaxvision.data import pp as pp_lib

Example = dict
Records = Sequence[Example]  # len() and [i] -> {key: array or scalar}


VALID = "_valid"  # eval batches: 1.0 for real rows, 0.0 for padding


class DataNotReadyError(RuntimeError):
  """The dataset is not prepared in data_dir (and download is off)."""


@dataclasses.dataclass(frozen=True)
class Dataset:
  """A dataset ready to batch.

  train/eval: random-access records. pp_train / pp_eval: the default batch preprocessing
  (pp strings; `config.dataset.pp_train` / `pp_eval` replace them when set).
  """
  info: DataInfo
  train: Records
  eval: Records
  pp_train: str = ""
  pp_eval: str = ""


def collate(examples: list[dict]) -> dict:
  """Records -> {key: stacked array}, or a list for keys whose examples differ in shape."""
  out = {}
  for k in examples[0]:
    vals = [np.asarray(e[k]) for e in examples]
    out[k] = np.stack(vals) if len({v.shape for v in vals}) == 1 else vals
  return out


@functools.lru_cache(maxsize=4)
def _epoch_perm(seed: int, epoch: int, n: int) -> np.ndarray:
  return np.random.default_rng((seed, 7, epoch)).permutation(n)


class ArrayRecords:
  """Random-access records over in-memory arrays of equal length: ArrayRecords(image=x, label=y)."""

  def __init__(self, **arrays: np.ndarray):
    lens = {k: len(v) for k, v in arrays.items()}
    if len(set(lens.values())) != 1:
      raise ValueError(f"ArrayRecords: arrays differ in length {lens}")
    self.arrays = arrays

  def __len__(self):
    return len(next(iter(self.arrays.values())))

  def __getitem__(self, i):
    return {k: v[i] for k, v in self.arrays.items()}

  def take(self, idx: np.ndarray) -> dict:
    """The batch of records `idx` in one gather per key."""
    return {k: np.asarray(v[idx]) for k, v in self.arrays.items()}


def gather(records: Records, idx: np.ndarray) -> dict:
  """The collated batch of records[idx] (one gather per key for ArrayRecords)."""
  if hasattr(records, "take"):
    return records.take(np.asarray(idx))
  return collate([records[int(i)] for i in idx])


class Pipeline:
  """Host-local batches for one process.

  Args:
    dataset: the Dataset.
    batch_size: the GLOBAL batch size (must divide by the process count).
    seed: data seed.
    process_index, process_count: this host's slice of every global batch.
    num_threads: threads that assemble batches ahead of the device (grain).
    pp_train, pp_eval: pp strings ('' = the dataset's defaults).
  """

  def __init__(self, dataset: Dataset, batch_size: int, seed: int = 0,
               process_index: int = 0, process_count: int = 1, num_threads: int = 8,
               pp_train: str = "", pp_eval: str = ""):
    if batch_size % process_count:
      raise ValueError(f"batch size {batch_size} does not divide over {process_count} processes")
    self.dataset, self.batch_size, self.seed = dataset, batch_size, seed
    self.local = batch_size // process_count
    self.offset = process_index * self.local
    self.process_index, self.process_count = process_index, process_count
    self.num_threads = max(1, num_threads)
    self.pp_train = pp_lib.parse(pp_train or dataset.pp_train)
    self.pp_eval = pp_lib.parse(pp_eval or dataset.pp_eval)

  def _index(self, position: int) -> int:
    n = len(self.dataset.train)
    return int(_epoch_perm(self.seed, position // n, n)[position % n])

  def train_batch(self, step: int) -> dict:
    """The local slice of global batch `step` (numpy)."""
    start = step * self.batch_size + self.offset
    n = len(self.dataset.train)
    pos = np.arange(start, start + self.local)
    epochs = pos // n
    idx = np.empty_like(pos)
    for e in np.unique(epochs):
      sel = epochs == e
      idx[sel] = _epoch_perm(self.seed, int(e), n)[pos[sel] % n]
    rng = np.random.default_rng((self.seed, 11, step, self.process_index))  # one per batch
    batch = gather(self.dataset.train, idx)
    return pp_lib.finalize(self.pp_train(batch, rng))

  def _iter(self, fn, start: int, end: int) -> Iterator[dict]:
    import grain
    ds = grain.MapDataset.range(start, end).map(fn)
    opts = grain.ReadOptions(num_threads=self.num_threads, prefetch_buffer_size=2 * self.num_threads)
    return iter(ds.to_iter_dataset(opts))

  def train_iter(self, start_step: int, end_step: int) -> Iterator[dict]:
    """Batches start_step..end_step-1, assembled by background threads (grain)."""
    return self._iter(self.train_batch, start_step, end_step)

  def eval_iter(self, batch_size: int, split: str = "eval") -> Iterator[dict]:
    """A split in order, padded to whole global batches; "_valid" (1/0) marks real rows
    (a loop-owned key, so records may use "mask" for forgery or segmentation masks).
    Batches are assembled ahead by background threads (grain)."""
    if batch_size % self.process_count:
      raise ValueError(f"eval batch size {batch_size} does not divide over {self.process_count} processes")
    n = len(self._split(split))
    return self._iter(lambda b: self.eval_batch(b, batch_size, split), 0, -(-n // batch_size))

  def _split(self, split: str) -> Records:
    return self.dataset.train if split == "train" else self.dataset.eval

  def eval_batch(self, index: int, batch_size: int, split: str = "eval") -> dict:
    local = batch_size // self.process_count
    records = self._split(split)
    n = len(records)
    start = index * batch_size + self.process_index * local
    positions = range(start, start + local)
    batch = gather(records, np.minimum(np.asarray(positions), n - 1))
    batch = pp_lib.finalize(self.pp_eval(batch, np.random.default_rng((self.seed, 13, index))))
    batch[VALID] = np.asarray([1.0 if p < n else 0.0 for p in positions], np.float32)
    return batch
