"""Two processes on loopback (jax.distributed, gloo CPU collectives), 4 fake
devices each, train the smoke config and end with the same parameters as one
process with 8 devices."""
import os
import socket
import subprocess
import sys

import numpy as np

WORKER = r"""
import os, sys
import jax
from absl import flags
flags.FLAGS.mark_as_parsed()
from jaxvision.config_lib import load_config_file
from jaxvision.core import loop
import numpy as np
c = load_config_file(sys.argv[1], "smoke")
c.distributed = sys.argv[3] == "1"
c.progress = False
t = loop.Trainer(c, sys.argv[2])
t.run()
if jax.process_index() == 0:
  leaves = [np.asarray(x.addressable_data(0)) for x in jax.tree.leaves(t.state["models"])]
  np.savez(os.path.join(sys.argv[2], "params.npz"), *leaves)
"""


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _env(devices, **extra):
  env = {k: v for k, v in os.environ.items() if not k.startswith("JAXVISION_")}
  env.update(JAX_PLATFORMS="cpu", TQDM_DISABLE="1",
             XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", **extra)
  return env


def test_two_processes_match_one(repo_root, tmp_path):
  cfg = str(repo_root / "configs" / "classify.py")
  single = tmp_path / "single"
  p = subprocess.run([sys.executable, "-c", WORKER, cfg, str(single), "0"], env=_env(8),
                     capture_output=True, text=True, timeout=600)
  assert p.returncode == 0, p.stderr[-3000:]

  multi = tmp_path / "multi"
  port = _free_port()
  logs = [open(tmp_path / f"worker{i}.log", "w+") for i in range(2)]  # files: no pipe deadlock
  procs = [subprocess.Popen(
      [sys.executable, "-c", WORKER, cfg, str(multi), "1"],
      env=_env(4, JAXVISION_COORDINATOR=f"127.0.0.1:{port}", JAXVISION_NUM_PROCESSES="2",
               JAXVISION_PROCESS_ID=str(i)),
      stdout=logs[i], stderr=subprocess.STDOUT, text=True) for i in range(2)]
  for pr, log in zip(procs, logs):
    pr.wait(timeout=600)
    log.seek(0)
    assert pr.returncode == 0, log.read()[-3000:]

  a, b = np.load(single / "params.npz"), np.load(multi / "params.npz")
  assert len(a.files) == len(b.files) > 0
  for k in a.files:
    np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-6)
