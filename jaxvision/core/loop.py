"""The one training loop: every method runs through `train(config, workdir)`.

Mesh from config.mesh -> abstract init (eval_shape) -> shardings from rules ->
jitted init -> per stage: jitted train step (in/out shardings, donated state,
rng = fold_in(key(seed), step)) -> evaluation at stage ends and every
`eval_every` steps -> orbax checkpoints (every `checkpoint_every`, after each
stage transition, at the end and on SIGTERM) -> metrics.jsonl, TensorBoard,
summary.json. A workdir with checkpoints resumes where it stopped, including
after host-side stage transitions (the checkpoint's meta rebuilds the structure).
"""
from __future__ import annotations

import contextlib
import copy
import math
import os
import signal
import time
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np

from jaxvision import config_lib
from jaxvision.core import checkpoint as ckpt_lib
from jaxvision.core import logging as log_lib
from jaxvision.core import sharding as shard_lib
from jaxvision.core.method import Method, RunContext, Stage
from jaxvision.core.registry import METHODS


class TrainingDivergedError(RuntimeError):
  """A non-finite loss; the last good checkpoint is kept."""


class Preempted(RuntimeError):
  """SIGTERM (or a test's stop request) arrived; a checkpoint was written."""


class _StopFlag:
  def __init__(self):
    self.set = False

  def __call__(self, signum, frame):  # signal handler
    self.set = True


@contextlib.contextmanager
def _sigterm(flag: _StopFlag):
  try:
    old = signal.signal(signal.SIGTERM, flag)
  except ValueError:  # not in the main thread
    old = None
  try:
    yield
  finally:
    if old is not None:
      signal.signal(signal.SIGTERM, old)


def build_context(config, workdir: str, mesh=None, dataset=None) -> tuple[RunContext, Any]:
  """Builds the RunContext (and the Dataset) a method sees. Also used by notebooks."""
  from jaxvision import data as data_lib
  mesh = mesh if mesh is not None else shard_lib.make_mesh(config.mesh)
  dataset = dataset if dataset is not None else data_lib.build(config)
  spe = max(1, dataset.info.num_train // config.batch_size)
  ctx = RunContext(config=config, data=dataset.info, mesh=mesh, workdir=workdir,
                   is_main=jax.process_index() == 0, steps_per_epoch=spe)
  return ctx, dataset


class Trainer:
  """Holds the compiled functions and state of one run. Use `train()`."""

  def __init__(self, config, workdir: str):
    if config.get("distributed", False):
      from jaxvision.core import distributed
      distributed.initialize()
    config_lib.validate(config)
    self.config, self.workdir = config, os.path.abspath(workdir)
    self.method: Method = METHODS.get(config.method)
    self.ctx, self.dataset = build_context(config, self.workdir)
    self.mesh = self.ctx.mesh
    data_size = self.mesh.shape["data"]
    for key in ("batch_size", "eval_batch_size"):
      if config[key] % data_size:
        raise config_lib.ConfigError(
            f"config.{key}={config[key]} is not a multiple of the {data_size} devices on the "
            f"'data' axis; use a multiple of {data_size}")
    from jaxvision.data import Pipeline
    self.pipeline = Pipeline(self.dataset, config.batch_size, seed=config.seed,
                             process_index=jax.process_index(), process_count=jax.process_count(),
                             num_threads=int(config.dataset.get("num_workers", 8)))
    self.base_key = jax.random.key(config.seed)
    self.stages: list[Stage] = self.method.get_stages(self.ctx)
    if not self.stages:
      raise config_lib.ConfigError(f"method '{config.method}' defines no stages")
    self.ends = [int(e) for e in np.cumsum([s.steps for s in self.stages])]
    self._jit_cache: dict = {}
    self.trace_counts: dict = {}  # jit traces per compiled function (tests assert 1)
    if self.ctx.is_main:
      try:
        os.makedirs(self.workdir, exist_ok=True)
      except OSError as e:
        raise config_lib.ConfigError(f"cannot use --workdir={workdir}: {e.strerror}; "
                                     f"pass a directory path") from e

  def fingerprint(self) -> dict:
    """Config keys that must not change when a run resumes (structure, data stream)."""
    c = self.config
    return {"method": c.method, "model": c.model.name, "model_kwargs": repr(sorted(
        dict(c.model.get("kwargs", {})).items())), "dataset": c.dataset.name,
        "batch_size": int(c.batch_size), "seed": int(c.seed),
        "stages": [[s.name, int(s.steps)] for s in self.stages]}

  # ----------------------------------------------------------------- state
  def _shardings(self, abstract):
    return shard_lib.state_shardings(abstract, self.mesh, self.config.sharding.params,
                                     self.method.sharding_rules)

  def _abstract(self, meta):
    return jax.eval_shape(lambda r: self.method.init(self.ctx, r, meta), self.base_key)

  def init_state(self, meta):
    abstract = self._abstract(meta)
    shardings = self._shardings(abstract)
    init = jax.jit(lambda r: self.method.init(self.ctx, r, meta), out_shardings=shardings)
    return init(jax.random.fold_in(self.base_key, 1 << 30)), shardings

  def restore_state(self, ckpt, step):
    meta = ckpt.restore_meta(step)
    saved, now = meta.get("fingerprint", {}), self.fingerprint()
    changed = [k for k in now if k in saved and saved[k] != now[k]]
    if changed:
      raise config_lib.ConfigError(
          f"--workdir={self.workdir} holds a run with different {', '.join(changed)} "
          f"({', '.join(f'{saved[k]} -> {now[k]}' for k in changed)}); resume with the same "
          f"config or use a new --workdir")
    abstract = self._abstract(meta)
    shardings = self._shardings(abstract)
    state = ckpt.restore(step, ckpt_lib.abstract_with_shardings(abstract, shardings))
    return state, meta, shardings

  # --------------------------------------------------------------- compiled
  def _train_fn(self, stage: Stage, meta: dict, shardings):
    key = ("train", stage, _meta_key(meta))
    if key not in self._jit_cache:
      step_fn = self.method.train_step(self.ctx, meta, stage)
      base = self.base_key
      rep = shard_lib.replicated(self.mesh)
      counts = self.trace_counts
      counts[key] = 0
      if stage.uses_data:
        def wrapped(state, batch):
          counts[key] += 1  # runs at trace time only
          return step_fn(state, batch, jax.random.fold_in(base, state["step"]))
        fn = jax.jit(wrapped, in_shardings=(shardings, shard_lib.batch_sharding(self.mesh)),
                     out_shardings=(shardings, rep), donate_argnums=0)
      else:
        def wrapped(state):
          counts[key] += 1
          return step_fn(state, None, jax.random.fold_in(base, state["step"]))
        fn = jax.jit(wrapped, in_shardings=(shardings,), out_shardings=(shardings, rep),
                     donate_argnums=0)
      self._jit_cache[key] = fn
    return self._jit_cache[key]

  def _eval_fn(self, meta: dict, shardings):
    key = ("eval", _meta_key(meta))
    if key not in self._jit_cache:
      per_example = self.method.eval_step(self.ctx, meta)

      def sums(state, batch):
        mask = batch["mask"].astype(jnp.float32)
        out = per_example(state, batch)
        res = {k: jnp.sum(v.astype(jnp.float32) * mask) for k, v in out.items()}
        res["_count"] = jnp.sum(mask)
        return res

      self._jit_cache[key] = jax.jit(
          sums, in_shardings=(shardings, shard_lib.batch_sharding(self.mesh)),
          out_shardings=shard_lib.replicated(self.mesh))
    return self._jit_cache[key]

  def evaluate(self, state, meta, shardings) -> dict:
    """Masked means of the method's per-example eval values over the eval split."""
    fn = self._eval_fn(meta, shardings)
    totals = None
    for local in self.pipeline.eval_iter(self.config.eval_batch_size):
      out = fn(state, shard_lib.global_batch(local, self.mesh))
      totals = out if totals is None else jax.tree.map(jnp.add, totals, out)
    totals = {k: float(v) for k, v in jax.device_get(totals or {}).items()}
    count = max(totals.pop("_count", 0.0), 1.0)
    return {k: v / count for k, v in totals.items()}

  # ------------------------------------------------------------------- run
  def run(self, stop_at_step: Optional[int] = None) -> dict:
    """Trains to the end (or to `stop_at_step`, simulating preemption)."""
    cfg, ctx = self.config, self.ctx
    t0 = time.time()
    ckpt = ckpt_lib.Checkpointer(self.workdir, cfg.keep_checkpoints)
    latest = ckpt.latest_step()
    writer = log_lib.MetricWriter(self.workdir, ctx.is_main, resume_step=latest)
    if latest is not None:
      state, meta, shardings = self.restore_state(ckpt, latest)
      last_saved = latest
    else:
      meta = {"stage": 0, "evals": {}, "fingerprint": self.fingerprint()}
      state, shardings = self.init_state(meta)
      if self.method.prepare is not None:
        state = jax.device_put(self.method.prepare(ctx, state, meta), shardings)
      last_saved = None
    step = int(jax.device_get(state["step"]))
    total = self.ends[-1]
    flag = _StopFlag()
    bar = log_lib.progress(total, step, ctx.is_main and bool(cfg.get("progress", True)),
                           desc=cfg.method)
    metrics = None

    def save(state, meta, step):
      nonlocal last_saved
      self._check_finite(metrics, step, last_saved)
      if not bool(_all_finite(state)):
        self._check_finite({"loss": float("nan")}, step, last_saved)
      ckpt.save(step, state, copy.deepcopy(meta))  # meta is serialised in a background thread
      last_saved = step

    multihost = jax.process_count() > 1

    def stop_requested(step):
      if stop_at_step is not None and step >= stop_at_step:
        return True
      if not multihost:
        return flag.set
      if step % cfg.log_every:  # hosts agree on the stop step (SIGTERM arrives at different times)
        return False
      from jax.experimental import multihost_utils
      return bool(np.max(multihost_utils.process_allgather(np.int32(flag.set))))

    def record_eval(state, meta, shardings, stage, when):
      res = self.evaluate(state, meta, shardings)
      meta.setdefault("evals", {}).setdefault(stage.name, {})[when] = res
      writer.write(step, {f"eval/{k}": v for k, v in res.items()})
      if ctx.is_main:
        bar.write(f"[{stage.name}:{when} @ step {step}] " +
                  ", ".join(f"{k}={v:.4f}" for k, v in res.items()))
      return res

    try:
      with _sigterm(flag):
        while True:
          si = int(meta["stage"])
          stage, end = self.stages[si], self.ends[si]
          if step < end:
            train_fn = self._train_fn(stage, meta, shardings)
            batches = self.pipeline.train_iter(step, end) if stage.uses_data else None
            while step < end:
              if batches is not None:
                state, metrics = train_fn(state, shard_lib.global_batch(next(batches), self.mesh))
              else:
                state, metrics = train_fn(state)
              step += 1
              bar.update(1)
              if step % cfg.log_every == 0 or step == end:
                m = jax.device_get(metrics)
                self._check_finite(m, step, last_saved)
                writer.write(step, {f"train/{k}": v for k, v in m.items()})
                bar.set_postfix({k: f"{float(v):.4g}" for k, v in list(m.items())[:4]}, refresh=False)
              if cfg.eval_every and step % cfg.eval_every == 0 and step != end:
                res = self.evaluate(state, meta, shardings)
                writer.write(step, {f"eval/{k}": v for k, v in res.items()})
              boundary = step == end and si + 1 < len(self.stages)
              if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and not boundary:
                save(state, meta, step)
              if stop_requested(step):
                if last_saved != step:
                  save(state, meta, step)
                raise Preempted(f"stopped at step {step}; checkpoint saved in {ckpt.directory}; "
                                f"run the same command again to resume")
          if stage.evaluate and "end" not in meta.get("evals", {}).get(stage.name, {}):
            record_eval(state, meta, shardings, stage, "end")
          if si + 1 == len(self.stages):
            break
          nxt = self.stages[si + 1]
          if self.method.transition is not None:
            state, new_meta = self.method.transition(ctx, state, meta, nxt)
            meta = {**meta, **new_meta}
          meta["stage"] = si + 1
          shardings = self._check_transition(state, meta, nxt)
          state = jax.device_put(state, shardings)
          if nxt.evaluate:
            record_eval(state, meta, shardings, nxt, "start")
          save(state, meta, step)
        if last_saved != step:
          save(state, meta, step)
    finally:
      bar.close()
      ckpt.close()
      writer.close()

    summary = {
        "method": cfg.method, "model": cfg.model.name, "dataset": cfg.dataset.name,
        "steps": step, "stages": meta.get("evals", {}),
        "final": meta.get("evals", {}).get(self.stages[-1].name, {}).get("end", {}),
        "wall_time_s": time.time() - t0, "devices": jax.device_count(),
        "processes": jax.process_count(), "backend": jax.default_backend(),
        "jax_version": jax.__version__, "config": cfg.to_dict(),
    }
    if self.method.summary is not None:
      summary.update(self.method.summary(ctx, state, meta))
    if ctx.is_main:
      log_lib.write_json(os.path.join(self.workdir, "summary.json"), summary)
    self.state, self.meta = state, meta
    return summary

  def _check_transition(self, state, meta, stage):
    """The transitioned state must be what init(meta) rebuilds on resume; returns its shardings."""
    import json
    try:
      meta_rt = json.loads(json.dumps(meta))
    except TypeError as e:
      raise TypeError(f"transition to '{stage.name}' returned a meta that is not JSON: {e}") from e
    expected = self._abstract(meta_rt)
    got = jax.eval_shape(lambda s: s, state)
    exp_leaves = jax.tree_util.tree_flatten_with_path(expected)[0]
    got_leaves = jax.tree_util.tree_flatten_with_path(got)[0]
    bad = [shard_lib.path_str(p) for (p, a), (_, b) in zip(exp_leaves, got_leaves)
           if (a.shape, a.dtype) != (b.shape, b.dtype)]
    if (jax.tree.structure(expected) != jax.tree.structure(got) or bad):
      raise RuntimeError(
          f"method '{self.method.name}': the state after the transition to '{stage.name}' differs "
          f"from init(meta) ({'; '.join(bad[:5]) or 'tree structure'}); a resumed run could not "
          f"restore it. Make init() build this structure from meta.")
    return self._shardings(expected)

  @staticmethod
  def _check_finite(metrics, step, last_saved):
    if metrics is None:
      return
    loss = float(np.asarray(jax.device_get(metrics.get("loss", 0.0))))
    if not math.isfinite(loss):
      where = f"step {last_saved}" if last_saved is not None else "none yet"
      raise TrainingDivergedError(
          f"loss or parameters are {loss} at step {step}; stopped without saving (last good checkpoint: "
          f"{where}). Lower optim.lr or check the data, then rerun to resume.")


def _meta_key(meta: dict) -> str:
  import json
  return json.dumps({k: v for k, v in meta.items() if k not in ("evals", "fingerprint")},
                    sort_keys=True, default=str)


@jax.jit
def _all_finite(state) -> jax.Array:
  """True when every floating leaf of the state is finite (checked before each save)."""
  leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(state)
            if jnp.issubdtype(x.dtype, jnp.floating)]
  return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def train(config, workdir: str, stop_at_step: Optional[int] = None) -> dict:
  """Runs (or resumes) `config` in `workdir`; returns the summary dict."""
  return Trainer(config, workdir).run(stop_at_step=stop_at_step)
