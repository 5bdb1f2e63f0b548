"""CLI errors exit non-zero at once with one line naming the problem and the fix."""
import os
import subprocess
import sys
import time

import pytest

ENV = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": ""}


def _run(repo, *args, timeout=120):
  t0 = time.time()
  p = subprocess.run([sys.executable, "-m", "jaxvision.main", *args], cwd=repo, env=ENV,
                     capture_output=True, text=True, timeout=timeout)
  return p, time.time() - t0


@pytest.mark.parametrize("args,expect", [
    (["--config=configs/classify.py:smoke"], "--workdir is required"),
    (["--config=configs/classify.py:smoke", "--config.model.name=resnet9000"],
     "unknown model 'resnet9000'"),
    (["--config=configs/classify.py:smoke", "--config.dataset.name=mnist"],
     "unknown dataset 'mnist'"),
    (["--config=configs/classify.py:smoke", "--config.method=prune_all"], "unknown method"),
    (["--config=configs/classify.py:resnet56", "--config.dataset.data_dir=/nonexistent/tfds"],
     "is not prepared in /nonexistent/tfds"),
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


def test_cli_unprepared_dataset_fails_fast(repo_root, tmp_path):
  p, seconds = _run(repo_root, "--config=configs/classify.py:resnet56",
                    "--config.dataset.data_dir=/nonexistent/tfds", f"--workdir={tmp_path}")
  assert p.returncode == 2
  # jax/tfds imports included; far from the 200 s of a download retry loop
  assert seconds < 60
  assert "download_and_prepare" in p.stderr


def test_cli_trains_and_writes_summary(repo_root, tmp_path):
  p, _ = _run(repo_root, "--config=configs/classify.py:smoke", "--config.mesh.shape=(-1,)",
              f"--workdir={tmp_path}", timeout=300)
  assert p.returncode == 0, p.stderr[-3000:]
  assert "final: " in p.stdout and (tmp_path / "summary.json").exists()
