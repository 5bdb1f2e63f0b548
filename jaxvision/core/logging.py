"""Run outputs: metrics.jsonl, TensorBoard events (tensorboardX), summary.json, progress bar."""
from __future__ import annotations

import json
import math
import os
import sys
import time
from typing import Any, Optional

import numpy as np


def to_python(x: Any) -> Any:
  """Numpy/jax scalars and arrays -> JSON-able Python values."""
  if isinstance(x, dict):
    return {str(k): to_python(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [to_python(v) for v in x]
  if hasattr(x, "tolist"):
    return to_python(x.tolist())
  if isinstance(x, float) and not math.isfinite(x):
    return str(x)  # JSON has no NaN/inf
  return x


class MetricWriter:
  """Writes scalars to workdir/metrics.jsonl and TensorBoard; no-op off the main process."""

  def __init__(self, workdir: str, enabled: bool = True, resume_step: Optional[int] = None):
    """resume_step: a resumed run drops the records written after that checkpoint."""
    self.enabled = enabled
    self._tb = None
    if enabled:
      os.makedirs(workdir, exist_ok=True)
      path = os.path.join(workdir, "metrics.jsonl")
      if resume_step is not None and os.path.exists(path):
        with open(path) as f:
          keep = [l for l in f if l.strip() and json.loads(l).get("step", 0) <= resume_step]
        with open(path, "w") as f:
          f.writelines(keep)
      self._jsonl = open(path, "a")
      try:
        from tensorboardX import SummaryWriter
        self._tb = SummaryWriter(os.path.join(workdir, "tb"),
                                 purge_step=None if resume_step is None else resume_step + 1)
      except ImportError:  # tensorboardX is a dependency; tolerate its absence
        self._tb = None

  def write(self, step: int, scalars: dict) -> None:
    if not self.enabled or not scalars:
      return
    vals = {k: float(np.asarray(v)) for k, v in scalars.items()}
    self._jsonl.write(json.dumps({"step": int(step), "time": time.time(), **vals}) + "\n")
    self._jsonl.flush()
    if self._tb is not None:
      for k, v in vals.items():
        self._tb.add_scalar(k, v, int(step))

  def close(self) -> None:
    if self.enabled:
      self._jsonl.close()
      if self._tb is not None:
        self._tb.close()


def write_json(path: str, obj: Any) -> None:
  """Atomic JSON write (temp file + rename)."""
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(to_python(obj), f, indent=2, sort_keys=True)
  os.replace(tmp, path)


def progress(total: int, initial: int, enabled: bool, desc: str = ""):
  """tqdm bar with steps/s and ETA (disabled off the main process)."""
  from tqdm import tqdm
  return tqdm(total=total, initial=initial, disable=not enabled, desc=desc, unit="step",
              dynamic_ncols=True, file=sys.stderr, mininterval=1.0)
