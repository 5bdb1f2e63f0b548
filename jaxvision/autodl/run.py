"""Runs one submission on one AutoDL dataset, as the starting kit's run_local_test.py.

  python -m jaxvision.autodl.run --dataset_dir=DIR --code=jaxvision.autodl.solution \\
      --time_budget=1200 --output_dir=OUT

Ingestion runs in a child process (`jaxvision.autodl.ingestion`); this process
is the scorer: it polls every `poll_s` seconds, kills the ingestion process
group once now > start + T (a `train` that overruns is never waited for; the
predictions written before stay), then scores (scores.txt, scores.json,
learning_curve.png in OUT). It never waits past init limit + T + grace.
Solution options reach the child through the JAXVISION_AUTODL_CONFIG env var
(JSON), read by `jaxvision.autodl.solution`.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time

from jaxvision.autodl import scoring
from jaxvision.autodl.ingestion import DEFAULT_CODE
from jaxvision.evaluators import autodl as ev

CONFIG_ENV = "JAXVISION_AUTODL_CONFIG"


def run(dataset_dir: str, output_dir: str, code: str = DEFAULT_CODE, time_budget: float = 1200.0,
        *, t0: float = ev.T0, init_time_limit: float = 1200.0, charge_init: bool = False,
        solution_config: dict | None = None, poll_s: float = 0.25, grace_s: float = 0.0,
        env: dict | None = None, quiet: bool = True) -> dict:
  """Runs ingestion in a child process under the budget, then scores; returns scores."""
  os.makedirs(output_dir, exist_ok=True)
  for f in os.listdir(output_dir):
    if f in ("start.txt", "end.txt", "scores.txt", "scores.json") or ".predict_" in f:
      os.remove(os.path.join(output_dir, f))
  cmd = [sys.executable, "-m", "jaxvision.autodl.ingestion", f"--dataset_dir={dataset_dir}",
         f"--code={code}", f"--output_dir={output_dir}", f"--time_budget={time_budget}",
         f"--init_time_limit={init_time_limit}"] + (["--charge_init"] if charge_init else [])
  child_env = dict(os.environ if env is None else env)
  if solution_config is not None:
    child_env[CONFIG_ENV] = json.dumps(solution_config)
  log = open(os.path.join(output_dir, "ingestion.log"), "w")
  t_launch = time.time()
  proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=child_env,
                          start_new_session=True)
  notes = []
  start_path = os.path.join(output_dir, "start.txt")
  try:
    start_time = None
    while True:
      if start_time is None and os.path.exists(start_path):
        start_time = scoring.read_yaml(start_path).get("start_time")
      now = time.time()
      if proc.poll() is not None:
        break
      deadline = (start_time + time_budget + grace_s if start_time is not None
                  else t_launch + init_time_limit + time_budget + 60.0)
      if now > deadline:
        notes.append(f"ingestion still running at t={now - (start_time or t_launch):.1f}s > "
                     f"T={time_budget:g}s: killed; earlier predictions kept")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        break
      time.sleep(poll_s)
  finally:
    if proc.poll() is None:
      os.killpg(proc.pid, signal.SIGKILL)
      proc.wait()
    log.close()
  res = scoring.score_run(dataset_dir, output_dir, time_budget=time_budget, t0=t0, notes=notes)
  if not quiet:
    print(json.dumps({k: res[k] for k in ("score", "nauc", "num_predictions", "Duration",
                                          "errors")}, indent=1))
  return res


def main(argv=None):
  p = argparse.ArgumentParser(description="Run an AutoDL submission on one dataset and score it.")
  p.add_argument("--dataset_dir", required=True, help="folder holding <name>.data and "
                 "<name>.solution")
  p.add_argument("--code", default=DEFAULT_CODE, help="folder with model.py, or a module path")
  p.add_argument("--output_dir", default=None, help="default: <dataset_dir>/../autodl_output")
  p.add_argument("--time_budget", type=float, default=1200.0)
  p.add_argument("--t0", type=float, default=ev.T0)
  p.add_argument("--init_time_limit", type=float, default=1200.0)
  p.add_argument("--charge_init", action="store_true", help="charge Model.__init__ to the budget")
  p.add_argument("--solution_config", default=None, help="JSON options for our solution")
  a = p.parse_args(argv)
  out = a.output_dir or os.path.join(os.path.dirname(os.path.abspath(a.dataset_dir)),
                                     "autodl_output")
  run(a.dataset_dir, out, a.code, a.time_budget, t0=a.t0, init_time_limit=a.init_time_limit,
      charge_init=a.charge_init,
      solution_config=json.loads(a.solution_config) if a.solution_config else None, quiet=False)


if __name__ == "__main__":
  main()
