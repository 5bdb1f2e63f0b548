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
        keep = []
        with open(path) as f:
          for line in f:
            try:  # a torn last line (kill -9, full disk) is dropped
              rec = json.loads(line)
            except ValueError:
              continue
            if rec.get("step", 0) <= resume_step:
              keep.append(json.dumps(rec) + "\n")
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
          f.writelines(keep)
        os.replace(tmp, path)
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


_LOGS = ("metrics.jsonl", "tb", "summary.json")


def move_aside_old_logs(workdir: str) -> list[str]:
  """Renames logs of an earlier run (no checkpoint to resume) to <name>.old-<time>."""
  stamp = time.strftime("%Y%m%d-%H%M%S")
  moved = []
  for name in _LOGS:
    p = os.path.join(workdir, name)
    if os.path.exists(p):
      os.replace(p, f"{p}.old-{stamp}")
      moved.append(f"{name} -> {name}.old-{stamp}")
  return moved


class WorkdirLockedError(RuntimeError):
  """Another live run holds the workdir."""


class WorkdirLock:
  """workdir/.lock held by one run (pid, host, start time); a dead holder's lock is taken over."""

  def __init__(self, workdir: str, enabled: bool = True):
    self.path = os.path.join(workdir, ".lock")
    self.enabled = enabled
    self.held = False

  def __enter__(self):
    if not self.enabled:
      return self
    import socket
    os.makedirs(os.path.dirname(self.path), exist_ok=True)
    me = {"pid": os.getpid(), "host": socket.gethostname(), "start": time.strftime("%Y-%m-%d %H:%M:%S")}
    for _ in range(2):
      try:
        fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
      except FileExistsError:
        try:
          with open(self.path) as f:
            holder = json.load(f)
        except (OSError, ValueError):
          holder = {}
        alive = holder.get("host") != me["host"] or _pid_alive(int(holder.get("pid", -1)))
        if alive and holder:
          raise WorkdirLockedError(
              f"{os.path.dirname(self.path)} is in use by process {holder.get('pid')} on "
              f"{holder.get('host')} (started {holder.get('start')}); wait for it or use another "
              f"--workdir (delete {self.path} if that run is gone)")
        os.remove(self.path)  # stale: its process is dead
        continue
      with os.fdopen(fd, "w") as f:
        json.dump(me, f)
      self.held = True
      return self
    raise WorkdirLockedError(f"could not take {self.path}; another run is starting on this workdir")

  def __exit__(self, *exc):
    if self.held:
      try:
        os.remove(self.path)
      except OSError:
        pass
      self.held = False


def _pid_alive(pid: int) -> bool:
  if pid <= 0:
    return False
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  return True


def write_json(path: str, obj: Any) -> None:
  """Atomic JSON write (temp file + rename)."""
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(to_python(obj), f, indent=2, sort_keys=True)
  os.replace(tmp, path)


def progress(total: Optional[int], initial: int, enabled: bool, desc: str = ""):
  """tqdm bar with steps/s and ETA (disabled off the main process)."""
  from tqdm import tqdm
  return tqdm(total=total, initial=initial, disable=not enabled, desc=desc, unit="step",
              dynamic_ncols=True, file=sys.stderr, mininterval=1.0)
