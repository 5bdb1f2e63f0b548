"""CLI errors exit non-zero at once with one line naming the problem and the fix."""
import os
import subprocess
import sys
import time

import pytest

from subproc import xla_flags

ENV = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": xla_flags()}


def _run(repo, *args, timeout=300):
  t0 = time.time()
  p = subprocess.run([sys.executable, "-m", "jaxvision.main", *args], cwd=repo, env=ENV,
                     capture_output=True, text=True, timeout=timeout)
  return p, time.time() - t0


@pytest.mark.parametrize("args,expect", [
    (["--config=configs/classify.py:smoke"], "--workdir is required"),
    (["--config=configs/classify.py:smoke", "--config.models.student.name=resnet9000"],
     "unknown model 'resnet9000'"),
    (["--config=configs/classify.py:smoke", "--config.dataset.name=mnist"],
     "unknown dataset 'mnist'"),
    (["--config=configs/classify.py:smoke", "--config.method=prune_all"], "unknown method"),
    (["--config=configs/classify.py:smoke", "--config.optims.student.name=lamb"], "optims.student.name='lamb'"),
    (["--config=configs/classify.py:smoke", "--config.log_every=0"], "log_every=0"),
    (["--config=configs/classify.py:smoke", "--config.mesh.shape=(16,)"], "needs 16 devices"),
    (["--config=configs/classify.py:nosuchvariant"], "unknown config variant"),
    (["--config=configs/classify.py:smoke", "--config.no_such_key=1"], "no_such_key"),
    (["--config=configs/classify.py:smoke", "--config.batch_size=abc"], "batch_size"),
])
def test_cli_errors(repo_root, tmp_path, args, expect):
  if not any(a.startswith("--workdir") for a in args) and "--workdir is required" not in expect:
    args = [*args, f"--workdir={tmp_path}"]
  p, _ = _run(repo_root, *args)
  assert p.returncode != 0
  assert expect in p.stderr, p.stderr[-2000:]
  assert "Traceback" not in p.stderr


def test_cli_unprepared_dataset_fails_with_the_fix(repo_root, tmp_path):
  # No network access is attempted (a download would hang ~200 s then fail differently).
  p, _ = _run(repo_root, "--config=configs/classify.py:resnet56",
              "--config.dataset.data_dir=/nonexistent/tfds", f"--workdir={tmp_path}")
  assert p.returncode == 2
  assert "is not prepared in /nonexistent/tfds" in p.stderr
  assert "download_and_prepare" in p.stderr and "Traceback" not in p.stderr


def test_cli_sigterm_checkpoints_and_resumes(repo_root, tmp_path):
  import signal
  args = [sys.executable, "-m", "jaxvision.main", "--config=configs/classify.py:smoke",
          "--config.steps=400", "--config.checkpoint_every=0", "--config.evals.eval.every_steps=0",
          "--config.log_every=1", f"--workdir={tmp_path}"]
  proc = subprocess.Popen(args, cwd=repo_root, env=ENV, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
  metrics = tmp_path / "metrics.jsonl"
  deadline = time.time() + 300
  while time.time() < deadline and proc.poll() is None:
    if metrics.exists() and metrics.read_text().count("\n") >= 2:
      break
    time.sleep(0.2)
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=300)
  assert proc.returncode == 143, err[-2000:]
  assert "run the same command again to resume" in err
  steps = [int(d) for d in os.listdir(tmp_path / "checkpoints") if d.isdigit()]
  assert len(steps) == 1 and 2 <= steps[0] < 400
  p, _ = _run(repo_root, *args[3:], timeout=600)
  assert p.returncode == 0, p.stderr[-2000:]
  import json
  assert json.loads((tmp_path / "summary.json").read_text())["steps"] == 400


def test_cli_trains_and_writes_summary(repo_root, tmp_path):
  p, _ = _run(repo_root, "--config=configs/classify.py:smoke", "--config.mesh.shape=(-1,)",
              f"--workdir={tmp_path}", timeout=300)
  assert p.returncode == 0, p.stderr[-3000:]
  assert "final: " in p.stdout and (tmp_path / "summary.json").exists()
