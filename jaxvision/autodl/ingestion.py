"""The AutoDL ingestion program (autodl.md §3, kit `ingestion.py` v20191204).

Runs in its own process (`python -m jaxvision.autodl.ingestion ...`, started by
`jaxvision.autodl.run`, which scores and enforces the budget from outside):

  M = Model(train_metadata)            # not charged (v20191204); own time limit
  start.txt <- ingestion_pid, task_name, time_budget, start_time
  while not M.done_training:
    M.train(D_train, remaining); Y = M.test(D_test, remaining)
    Y is None -> stop; wrong shape / non-finite -> fail (earlier predictions count)
    write <task>.predict_<i>; append "<i>: <timestamp>" to start.txt
    remaining <= 0 -> stop
  end.txt <- ingestion_duration, ingestion_success, end_time[, error]

A long `train` is never pre-empted here: the scorer kills this process once
now > start + T. `--code` is a folder holding `model.py` (the kit's layout) or
a dotted module path with a `Model` class (default: our solution).
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import os
import signal
import sys
import time
import traceback

import numpy as np

from jaxvision.autodl import data as data_lib

DEFAULT_CODE = "jaxvision.autodl.solution"


class BadPredictionShapeError(ValueError):
  """A prediction whose shape is not (n_test, output_dim)."""


class BadPredictionValueError(ValueError):
  """A prediction holding NaN or inf."""


class InitTimeoutError(TimeoutError):
  """Model.__init__ ran past its own time limit."""


def load_model_class(code: str):
  """`code`: a folder with model.py, a path to a .py file, or a dotted module path."""
  path = code
  if os.path.isdir(path):
    path = os.path.join(path, "model.py")
  if path.endswith(".py"):
    if not os.path.exists(path):
      raise FileNotFoundError(f"no submission file {path}; --code needs a folder with model.py")
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    spec = importlib.util.spec_from_file_location("autodl_submission_model", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
  else:
    mod = importlib.import_module(code)
  if not hasattr(mod, "Model"):
    raise AttributeError(f"submission {code} defines no Model class")
  return mod.Model


@contextlib.contextmanager
def time_limit(seconds: float):
  """SIGALRM limit on the main thread (the kit's `timeit` for Model.__init__)."""
  def handler(signum, frame):
    raise InitTimeoutError(f"Model.__init__ exceeded its {seconds:g} s limit")
  if seconds <= 0 or not hasattr(signal, "SIGALRM"):
    yield
    return
  old = signal.signal(signal.SIGALRM, handler)
  signal.setitimer(signal.ITIMER_REAL, seconds)
  try:
    yield
  finally:
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, old)


def _write_yaml(path: str, items: dict, mode: str = "w"):
  with open(path, mode) as fh:
    for k, v in items.items():
      fh.write(f"{k}: {v}\n")


def check_prediction(y, expected: tuple[int, int]) -> np.ndarray:
  """Raises BadPredictionShapeError / BadPredictionValueError; returns float64 array."""
  try:
    arr = np.asarray(y, np.float64)
  except (TypeError, ValueError) as e:
    raise BadPredictionValueError(f"prediction is not a numeric array: {e}") from e
  if arr.shape != tuple(expected):
    raise BadPredictionShapeError(f"bad prediction shape {arr.shape}; expected {tuple(expected)} "
                                  "(n_test, output_dim)")
  if not np.all(np.isfinite(arr)):
    raise BadPredictionValueError(f"prediction has {int((~np.isfinite(arr)).sum())} NaN/inf "
                                  "values")
  return arr


def run_ingestion(dataset_dir: str, code: str, output_dir: str, time_budget: float = 1200.0,
                  init_time_limit: float = 1200.0, charge_init: bool = False) -> bool:
  """The ingestion loop; returns ingestion success. Writes into output_dir."""
  os.makedirs(output_dir, exist_ok=True)
  t_begin = time.time()
  end = {"ingestion_duration": 0.0, "ingestion_success": 0}
  start_path = os.path.join(output_dir, "start.txt")
  started = False
  try:
    task, _ = data_lib.find_data_dir(dataset_dir)
    d_train = data_lib.read_split(dataset_dir, "train")
    d_test = data_lib.read_split(dataset_dir, "test")
    expected = (d_test.get_metadata().size(), d_train.get_metadata().get_output_size())
    data_lib.tfrecord_lib()  # library imports happen before the clock starts
    import PIL.Image  # pylint: disable=g-import-not-at-top,unused-import
    model_cls = load_model_class(code)
    start = time.time()
    with time_limit(init_time_limit):
      model = model_cls(d_train.get_metadata())
    if not charge_init:
      start = time.time()
    _write_yaml(start_path, {"ingestion_pid": os.getpid(), "task_name": task,
                             "time_budget": time_budget, "start_time": start})
    started = True
    i = 0
    while not getattr(model, "done_training", False):
      model.train(d_train.get_dataset(), remaining_time_budget=start + time_budget - time.time())
      y = model.test(d_test.get_dataset(), remaining_time_budget=start + time_budget - time.time())
      if y is None:
        break
      arr = check_prediction(y, expected)
      pred = os.path.join(output_dir, f"{task}.predict_{i}")
      np.savetxt(pred + ".tmp", arr, fmt="%.7g")
      os.replace(pred + ".tmp", pred)
      _write_yaml(start_path, {i: time.time()}, mode="a")
      i += 1
      if start + time_budget - time.time() <= 0:
        break
    end["ingestion_success"] = 1
  except Exception as e:  # pylint: disable=broad-except
    end["error"] = repr(f"{type(e).__name__}: {e}".replace("\n", " "))
    traceback.print_exc()
    if not started:
      _write_yaml(start_path, {"ingestion_pid": os.getpid(), "task_name": "",
                               "time_budget": time_budget, "start_time": time.time(),
                               "failed_before_start": 1})
  end["ingestion_duration"] = time.time() - t_begin
  end["end_time"] = time.time()
  _write_yaml(os.path.join(output_dir, "end.txt"), end)
  return bool(end["ingestion_success"])


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--dataset_dir", required=True)
  p.add_argument("--code", default=DEFAULT_CODE)
  p.add_argument("--output_dir", required=True)
  p.add_argument("--time_budget", type=float, default=1200.0)
  p.add_argument("--init_time_limit", type=float, default=1200.0)
  p.add_argument("--charge_init", action="store_true")
  a = p.parse_args(argv)
  ok = run_ingestion(a.dataset_dir, a.code, a.output_dir, a.time_budget, a.init_time_limit,
                     a.charge_init)
  sys.exit(0 if ok else 1)


if __name__ == "__main__":
  main()
