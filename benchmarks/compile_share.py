"""Wall time of one run and the share of it spent compiling (XLA backend compiles).

  python benchmarks/compile_share.py --config=configs/classify.py:demo
  python benchmarks/compile_share.py --config=configs/optg.py:demo --set optg.target=0.98

Runs the config in a fresh temporary workdir with JAX's persistent compilation cache off
(every program compiles), and prints one table row: wall, compile seconds (sum of XLA
backend compile events), their share, the number of compiled programs and the process
CPU time. Start-up work (imports) is excluded from the wall figure.
"""
import argparse
import os
import resource
import sys
import tempfile
import time


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument("--config", required=True, help="configs/<key>.py[:<variant>]")
  p.add_argument("--set", nargs="*", default=[], help="overrides key=value (python literal)")
  p.add_argument("--steps", type=int, default=0, help="override config.steps (0: keep)")
  a = p.parse_args(argv)

  import ast

  import jax
  import jax.monitoring

  from jaxvision import config_lib
  from jaxvision.core import loop
  import jaxvision.methods  # noqa: F401  (registers every method)

  compiles = []
  jax.monitoring.register_event_duration_secs_listener(
      lambda name, secs, **kw: compiles.append(secs)
      if name == "/jax/core/compile/backend_compile_duration" else None)
  path, _, arg = a.config.partition(":")
  c = config_lib.load_config_file(path, arg or None)
  c.compilation_cache = False
  c.progress = False
  for kv in a.set:
    k, _, v = kv.partition("=")
    try:
      v = ast.literal_eval(v)
    except (ValueError, SyntaxError):
      pass
    config_lib.set_path(c, k, v)
  if a.steps:
    c.num_epochs, c.steps = None, a.steps
  cpu0 = resource.getrusage(resource.RUSAGE_SELF)
  t0 = time.time()
  with tempfile.TemporaryDirectory() as wd:
    loop.train(c, os.path.join(wd, "run"))
  wall = time.time() - t0
  cpu1 = resource.getrusage(resource.RUSAGE_SELF)
  cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
  comp = sum(compiles)
  print("| config | wall s | compile s | compile share | programs | CPU s | jax |")
  print("|---|---|---|---|---|---|---|")
  print(f"| {a.config} {' '.join(a.set)} | {wall:.1f} | {comp:.1f} | {comp / wall:.0%} | "
        f"{len(compiles)} | {cpu:.1f} | {jax.__version__} |")
  sys.stdout.flush()


if __name__ == "__main__":
  main()
