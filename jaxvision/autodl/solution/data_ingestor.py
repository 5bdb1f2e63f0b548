"""Data ingestor: progressive loading, caching and the validation split (§6-7).

The training set is read a chunk per `train` call (sizes from the modality's
schedule; the last size doubles afterwards), each example transformed once by
the learner's `transform` and cached; the `load_all` ablation reads it all on
the first call. The first chunk gives the held-out validation set
(val_frac of the dataset size, capped); the test set is read and cached once.
"""
from __future__ import annotations

import itertools
from typing import Callable, Sequence

import numpy as np


class DataIngestor:
  """Progressive reader over a re-iterable of (x [T,H,W,C], y [K])."""

  def __init__(self, n_train: int, schedule: Sequence[int], *, val_frac: float, val_cap: int,
               load_all: bool, seed: int, transform: Callable = lambda x: x):
    self.n_train = int(n_train)
    self.schedule = [int(s) for s in schedule] or [self.n_train]
    self.load_all = load_all
    self.val_size = int(min(val_cap, max(2, round(val_frac * self.n_train))))
    self.transform = transform
    self.rng = np.random.default_rng(seed)
    self._iter = None
    self.calls = 0
    self.exhausted = False
    self.train_x: list = []
    self.train_y: list = []
    self.val_x: list = []
    self.val_y: list = []
    self.test_x: list | None = None

  def raw_scan(self, dataset, n: int) -> list:
    """The first n raw examples (no caching; used for shape/statistics scans)."""
    return list(itertools.islice(iter(dataset), n))

  def next_chunk_size(self) -> int:
    if self.load_all:
      return self.n_train
    i = self.calls
    if i < len(self.schedule):
      return self.schedule[i]
    return self.schedule[-1] * 2 ** (i - len(self.schedule) + 1)

  def fetch(self, dataset, n: int | None = None) -> int:
    """Reads the next chunk into the cache; returns how many examples were added."""
    if self.exhausted:
      return 0
    if self._iter is None:
      self._iter = iter(dataset)
    n = self.next_chunk_size() if n is None else n
    got = list(itertools.islice(self._iter, n))
    self.calls += 1
    if len(got) < n:
      self.exhausted = True
    if not got:
      return 0
    xs = [self.transform(x) for x, _ in got]
    ys = [np.asarray(y, np.float32) for _, y in got]
    if not self.val_x:  # the first chunk gives the validation split
      perm = self.rng.permutation(len(xs))
      nv = min(self.val_size, len(xs) // 2)
      vi, ti = perm[:nv], perm[nv:]
      self.val_x, self.val_y = [xs[i] for i in vi], [ys[i] for i in vi]
      xs, ys = [xs[i] for i in ti], [ys[i] for i in ti]
    self.train_x += xs
    self.train_y += ys
    if len(self.train_x) + len(self.val_x) >= self.n_train:
      self.exhausted = True
    return len(got)

  def test(self, dataset) -> list:
    if self.test_x is None:
      self.test_x = [self.transform(x) for x, _ in dataset]
    return self.test_x

  def arrays(self, part: str):
    """('train'|'val') -> (list of transformed x, y [n, K])."""
    xs, ys = (self.train_x, self.train_y) if part == "train" else (self.val_x, self.val_y)
    return xs, np.stack(ys) if ys else np.zeros((0, 0), np.float32)
