"""Reliability of a run's workdir (issue 11): damaged checkpoints, torn logs, the workdir
lock, the resume fingerprint over optimizers and method options, the divergence guard,
logs without checkpoints, and a rerun of a finished run."""
import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.core import loop
from jaxvision.core.config import ConfigError
from jaxvision.core.logging import WorkdirLockedError


def _cfg(load_config, **over):
  c = load_config("classify", "smoke")
  c.progress = False
  for k, v in over.items():
    node = c
    *parents, leaf = k.split(".")
    for p in parents:
      node = node[p]
    node[leaf] = v
  return c


def _lines(path):
  return [json.loads(l) for l in open(path) if l.strip()]


@pytest.fixture(scope="module")
def finished(tmp_path_factory, load_config_module):
  d = tmp_path_factory.mktemp("finished")
  t = loop.Trainer(_cfg(load_config_module), str(d))
  t.run()
  return d, t


@pytest.fixture(scope="module")
def load_config_module():
  from jaxvision.config_lib import load_config_file
  import pathlib
  root = pathlib.Path(__file__).resolve().parents[2]
  return lambda name, arg=None: load_config_file(str(root / "configs" / f"{name}.py"), arg)


def test_rerun_of_finished_run_is_a_noop(finished, load_config, capsys):
  d, t = finished
  before = open(d / "metrics.jsonl").read()
  s = loop.train(_cfg(load_config), str(d))
  assert open(d / "metrics.jsonl").read() == before  # no duplicate final eval
  assert s["final"] == json.load(open(d / "summary.json"))["final"]
  assert "finished; nothing to do" in capsys.readouterr().err


def test_damaged_latest_checkpoint_falls_back_and_torn_log_line_is_dropped(
    finished, load_config, tmp_path, capsys):
  d, full = finished
  w = tmp_path / "w"
  shutil.copytree(d, w)
  os.remove(w / "summary.json")
  # damage every data file of the newest step (6) and tear the last metrics line
  for root, _, files in os.walk(w / "checkpoints" / "6"):
    for f in files:
      with open(os.path.join(root, f), "wb") as fh:
        fh.write(b"garbage")
  with open(w / "metrics.jsonl", "a") as f:
    f.write('{"step": 7, "train/lo')
  t = loop.Trainer(_cfg(load_config), str(w))
  t.run()
  err = capsys.readouterr().err
  assert "checkpoint step 6 does not restore" in err and "kept as" in err
  assert os.listdir(w / "checkpoints_damaged")  # the damaged step was not deleted
  rows = _lines(w / "metrics.jsonl")  # every line parses: the torn one was dropped
  assert max(r["step"] for r in rows) == 6
  for a, b in zip(jax.tree.leaves(full.state), jax.tree.leaves(t.state)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # resumed from step 3 exactly


def test_workdir_lock_refuses_a_live_holder_and_takes_over_a_dead_one(finished, load_config):
  d, _ = finished
  lock = d / ".lock"
  import socket
  lock.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                              "start": "2026-11-29 00:00:00"}))
  try:
    with pytest.raises(WorkdirLockedError, match=f"process {os.getpid()}"):
      loop.train(_cfg(load_config), str(d))
  finally:
    lock.unlink()
  lock.write_text(json.dumps({"pid": 2 ** 22 + 12345, "host": socket.gethostname(),
                              "start": "2026-11-29 00:00:00"}))
  loop.train(_cfg(load_config), str(d))  # stale (dead pid): taken over; a finished run: no-op
  assert not lock.exists()


def test_fingerprint_covers_optimizers_and_method_options(finished, load_config):
  d, _ = finished
  with pytest.raises(ConfigError, match="holds a run with different optims"):
    loop.Trainer(_cfg(load_config, **{"optims.student.name": "adam"}), str(d)).run()


def test_health_groups_chunks_and_sharded_leaves(monkeypatch):
  """_health over chunked replicated leaves and a sharded (fsdp-like) leaf: the norm covers
  exactly state["models"], one NaN/inf anywhere (models or not, chunked or sharded) is seen."""
  from jax.sharding import NamedSharding, PartitionSpec as P
  monkeypatch.setattr(loop, "_HEALTH_CHUNK", 10)  # 4 + 6 | 12 (alone) | 3
  mesh = jax.make_mesh((jax.device_count(),), ("data",),
                       axis_types=(jax.sharding.AxisType.Auto,))
  sharded = jax.device_put(np.arange(16, dtype=np.float32).reshape(8, 2),
                           NamedSharding(mesh, P("data")))
  models = {"a": jnp.full((4,), 2.0), "b": jnp.ones((2, 3), jnp.bfloat16), "c": jnp.ones(12),
            "d": jnp.arange(3.0), "s": sharded, "n": jnp.arange(3)}
  state = {"models": models, "opt": {"m": jnp.ones(5)}, "step": jnp.array(3)}
  chunks, other = loop._health_groups([models[k] for k in "abcds"])
  assert [len(c) for c in chunks] == [2, 1, 1] and len(other) == 1 and other[0] is sharded
  finite, norm = loop._health(state)
  want = np.sqrt(4 * 4 + 6 + 12 + (0 + 1 + 4) + float(np.sum(np.arange(16.0) ** 2)))
  assert bool(finite) and float(norm) == pytest.approx(want, rel=1e-6)
  for path in (("opt", "m"), ("models", "c"), ("models", "s")):
    bad = jax.tree.map(lambda x: x, state)
    leaf = bad[path[0]][path[1]]
    bad[path[0]][path[1]] = leaf.at[(0,) * leaf.ndim].set(np.inf)
    assert not bool(loop._health(bad)[0]), path


def test_divergence_guard_rejects_exploded_finite_weights(finished, load_config):
  d, t = finished
  state = jax.tree.map(lambda x: x * 1e6 if np.issubdtype(x.dtype, np.floating) else x, t.state)
  finite, norm = loop._health(t.state)
  big_finite, big = loop._health(state)
  assert bool(finite) and bool(big_finite)
  np.testing.assert_allclose(float(big), 1e6 * float(norm), rtol=1e-5)
  sq = sum(float(np.sum(np.square(np.asarray(x, np.float64))))
           for x in jax.tree.leaves(jax.device_get(t.state["models"]))
           if np.issubdtype(x.dtype, np.floating))
  np.testing.assert_allclose(float(norm), np.sqrt(sq), rtol=1e-5)
  assert not bool(loop._health(jax.tree.map(lambda x: x * np.nan, t.state))[0])
  meta = {"norm_at_first_save": float(norm)}
  with pytest.raises(loop.TrainingDivergedError, match="lower learning rate"):
    t._check_norm_growth(float(big), meta, 9, 6)
  t._check_norm_growth(float(norm), meta, 9, 6)  # the run's own weights pass


def test_logs_without_checkpoints_are_moved_aside(finished, load_config, tmp_path, capsys):
  d, _ = finished
  w = tmp_path / "w"
  shutil.copytree(d, w)
  shutil.rmtree(w / "checkpoints")
  old = _lines(w / "metrics.jsonl")
  loop.train(_cfg(load_config, steps=2, **{"evals.eval.every_steps": 0}), str(w))
  assert "moved them aside" in capsys.readouterr().err
  assert max(r["step"] for r in _lines(w / "metrics.jsonl")) == 2
  aside = [f for f in os.listdir(w) if f.startswith("metrics.jsonl.old-")]
  assert len(aside) == 1 and _lines(w / aside[0]) == old
