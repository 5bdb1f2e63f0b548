"""The one training loop: every method runs through `train(config, workdir)`.

Mesh from config.mesh -> abstract init (eval_shape) -> shardings from rules ->
jitted init -> per stage (typed: steps, epochs or a wall-clock budget): jitted train
step (in/out shardings, donated state, rng = fold_in(key(seed), step)) -> the evals of
`config.evals` (named predict functions -> evaluators, every N steps / N seconds / at
stage ends; records carry the run's wall-clock time) -> orbax checkpoints (every
`checkpoint_every`, after each stage transition, at the end and on SIGTERM/SIGINT) ->
metrics.jsonl, TensorBoard, summary.json. A workdir with checkpoints resumes where it
stopped, including after host-side stage transitions (the checkpoint's meta rebuilds the
structure) and inside a time-budgeted stage (its clock is saved in meta). A damaged newest
checkpoint is skipped for the newest one that restores. One run holds a workdir at a time.
"""
from __future__ import annotations

import collections
import contextlib
import copy
import json
import math
import os
import signal
import sys
import time
from typing import Any, Optional

import jax
import jax.numpy as jnp
from jax.extend import core as jax_core
import numpy as np

from jaxvision.core import checkpoint as ckpt_lib
from jaxvision.core import evaluation
from jaxvision.core.config import ConfigError, run_length, validate
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
  """SIGTERM and SIGINT (Ctrl-C) set the flag: the loop saves a checkpoint and stops."""
  old = {}
  for sig in (signal.SIGTERM, signal.SIGINT):
    try:
      old[sig] = signal.signal(sig, flag)
    except ValueError:  # not in the main thread
      pass
  try:
    yield
  finally:
    for sig, handler in old.items():
      signal.signal(sig, handler)


def build_context(config, workdir: str, mesh=None, dataset=None) -> tuple[RunContext, Any]:
  """Builds the RunContext (and the Dataset) a method sees. Also used by notebooks."""
  from jaxvision.core.registry import DATASETS
  mesh = mesh if mesh is not None else shard_lib.make_mesh(config.mesh)
  dataset = dataset if dataset is not None else DATASETS.get(config.dataset.name)(config)
  spe = max(1, dataset.info["num_train"] // config.batch_size)
  ctx = RunContext(config=config, data=dataset.info, mesh=mesh, workdir=workdir,
                   is_main=jax.process_index() == 0, steps_per_epoch=spe)
  return ctx, dataset


class _Eval:
  """One configured evaluation: its data, predict function name, evaluators and cadence."""

  def __init__(self, name: str, cfg, pipeline):
    self.name, self.cfg, self.pipeline = name, cfg, pipeline
    self.evaluators = evaluation.from_config(cfg.evaluators)
    self.every_steps = int(cfg.get("every_steps", 0))
    self.every_seconds = float(cfg.get("every_seconds", 0.0))
    self.split = str(cfg.get("split", "eval"))

  def metric_name(self, label: str, metric: str, clash: bool) -> str:
    m = f"{label}/{metric}" if clash else metric
    return m if self.name == "eval" else f"{self.name}/{m}"


class Trainer:
  """Holds the compiled functions and state of one run. Use `train()`."""

  def __init__(self, config, workdir: str):
    if config.get("distributed", False):
      from jaxvision.core import distributed
      distributed.initialize()
    validate(config)
    workdir = os.path.abspath(os.path.expanduser(workdir))
    self.config, self.workdir = config, workdir
    _compilation_cache(config)
    self.method: Method = METHODS.get(config.method)
    self.ctx, self.dataset = build_context(config, self.workdir)
    self.mesh = self.ctx.mesh
    data_size = self.mesh.shape["data"]
    for key in ("batch_size", "eval_batch_size"):
      if config[key] % data_size:
        raise ConfigError(
            f"config.{key}={config[key]} is not a multiple of the {data_size} devices on the "
            f"'data' axis; use a multiple of {data_size}")
    self.pipeline = self._pipeline(self.dataset)
    self.base_key = jax.random.key(config.seed)
    self.stages: list[Stage] = self.method.get_stages(self.ctx)
    if not self.stages:
      raise ConfigError(f"method '{config.method}' defines no stages")
    self.stage_steps = [s.num_steps(self.ctx.steps_per_epoch) for s in self.stages]
    self.length_rule = run_length(config, self.ctx.steps_per_epoch)[1]
    self.evals = self._build_evals()
    # jit traces per compiled function (tests assert 1); both shared by the Trainers of this
    # process that have the same config and mesh (a resumed or repeated run compiles nothing)
    self._jit_cache, self.trace_counts = _compiled_cache(config, self.mesh)
    if self.ctx.is_main:
      if os.path.exists(self.workdir) and not os.access(self.workdir, os.W_OK):
        raise ConfigError(f"--workdir={workdir} is not writable; choose a directory you can write")
      try:
        os.makedirs(self.workdir, exist_ok=True)
      except OSError as e:
        raise ConfigError(f"cannot use --workdir={workdir}: {e.strerror}; "
                          f"pass a directory path") from e

  def _pipeline(self, dataset, pp_train: str = "", pp_eval: str = ""):
    from jaxvision.data import Pipeline
    c = self.config
    return Pipeline(dataset, c.batch_size, seed=c.seed, process_index=jax.process_index(),
                    process_count=jax.process_count(),
                    num_threads=int(c.dataset.get("num_workers", 8)),
                    pp_train=pp_train or c.dataset.get("pp_train", ""),
                    pp_eval=pp_eval or c.dataset.get("pp_eval", ""))

  def _build_evals(self) -> dict:
    from jaxvision.core.registry import DATASETS
    out = {}
    for name, ec in self.config.evals.items():
      pipeline = self.pipeline
      if ec.get("dataset", "") or ec.get("pp", ""):
        ds = self.dataset
        if ec.get("dataset", ""):
          sub = self.config.copy_and_resolve_references()
          with sub.unlocked():
            sub.dataset.name = ec.dataset
          ds = DATASETS.get(sub.dataset.name)(sub)
        pipeline = self._pipeline(ds, pp_eval=ec.get("pp", ""))
      out[name] = _Eval(name, ec, pipeline)
    return out

  def fingerprint(self) -> dict:
    """Config values that must not change when a run resumes (structure, data stream)."""
    c = self.config
    fp = {"method": c.method,
          "models": {r: [rc.name, repr(sorted(dict(rc.get("kwargs", {})).items())),
                         bool(rc.get("trainable", True))] for r, rc in c.models.items()},
          "optims": {n: [oc.name, bool(oc.get("nesterov", False)), float(oc.get("momentum", 0.0))]
                     for n, oc in c.optims.items()},
          "dataset": c.dataset.name, "batch_size": int(c.batch_size), "seed": int(c.seed),
          "stages": [[s.name, s.kind, self.stage_steps[i], s.seconds]
                     for i, s in enumerate(self.stages)]}
    if self.method.fingerprint is not None:
      fp["method_options"] = _jsonable(self.method.fingerprint(self.ctx))
    return fp

  # ----------------------------------------------------------------- state
  def _shardings(self, abstract):
    return shard_lib.state_shardings(abstract, self.mesh, self.config.sharding.params,
                                     self.method.sharding_rules)

  def _traced_init(self, meta):
    """method.init(ctx, key, meta) traced once per meta (building models in Python is a large
    part of a small run): -> (its closed jaxpr, the abstract state)."""
    key = ("init_jaxpr", _meta_key(meta))
    if key not in self._jit_cache:
      method, ctx = self.method, self.ctx
      self._jit_cache[key] = jax.make_jaxpr(lambda r: method.init(ctx, r, meta),
                                            return_shape=True)(self.base_key)
    return self._jit_cache[key]

  def _abstract(self, meta):
    return self._traced_init(meta)[1]

  def init_state(self, meta):
    closed, abstract = self._traced_init(meta)
    shardings = self._shardings(abstract)
    key = ("init", _meta_key(meta))
    if key not in self._jit_cache:
      treedef, replay = jax.tree.structure(abstract), jax_core.jaxpr_as_fun(closed)
      self._jit_cache[key] = jax.jit(lambda r: jax.tree.unflatten(treedef, replay(r)),
                                     out_shardings=shardings, compiler_options=_run_once_options())
    init = self._jit_cache[key]
    return init(jax.random.fold_in(self.base_key, 1 << 30)), shardings

  def restore_state(self, ckpt, step):
    meta = ckpt.restore_meta(step)
    saved, now = meta.get("fingerprint", {}), self.fingerprint()
    changed = [k for k in now if k in saved and saved[k] != _jsonable(now[k])]
    if changed:
      raise ConfigError(
          f"--workdir={self.workdir} holds a run with different {', '.join(changed)} "
          f"({'; '.join(f'{saved[k]} -> {_jsonable(now[k])}' for k in changed)}); resume with "
          f"the same config or use a new --workdir")
    abstract = self._abstract(meta)
    shardings = self._shardings(abstract)
    state = ckpt.restore(step, ckpt_lib.abstract_with_shardings(abstract, shardings))
    return state, meta, shardings

  def _restore_newest_good(self, ckpt, say):
    """Restores the newest checkpoint that reads back; damaged newer ones are skipped (kept)."""
    for step in sorted(ckpt.all_steps(), reverse=True):
      try:
        return self.restore_state(ckpt, step)
      except ConfigError:
        raise
      except Exception as e:  # noqa: BLE001  (orbax/tensorstore raise many types)
        reason = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        kept = ckpt.move_aside(step)
        say(f"checkpoint step {step} does not restore ({type(e).__name__}: {reason}); skipped "
            f"and kept as {kept}; trying an older one")
    return None

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

  def _predict_fn(self, ev: _Eval, stage: Stage, meta: dict, shardings):
    fns = self.method.predict_fns(self.ctx, meta, stage)
    if not fns:
      raise ConfigError(f"method '{self.method.name}' has no predict functions")
    name = ev.cfg.predict
    if name == "default":
      name = next(iter(fns))
    if name not in fns:
      raise ConfigError(f"config.evals.{ev.name}.predict='{ev.cfg.predict}' is not a predict "
                        f"function of method '{self.method.name}' in stage '{stage.name}'; "
                        f"choose one of {', '.join(fns)} (or 'default')")
    key = ("predict", name, stage, _meta_key(meta))
    if key not in self._jit_cache:
      fn = fns[name]
      self._jit_cache[key] = (fn, jax.jit(
          fn, in_shardings=(shardings, shard_lib.batch_sharding(self.mesh)),
          out_shardings=shard_lib.batch_sharding(self.mesh)))
    return self._jit_cache[key]

  def check_evals(self, state, meta, shardings, stage: Stage):
    """At start-up: the train pp runs on a first batch (a missing key or mismatched pair
    fails here, naming the op) and every evaluator finds the output keys it reads
    (abstract trace, no compile)."""
    if any(s.uses_data for s in self.stages):
      self.pipeline.train_batch(0)
    for ev in self.evals.values():
      fn, _ = self._predict_fn(ev, stage, meta, shardings)
      if not len(ev.pipeline._split(ev.split)):
        raise ConfigError(f"config.evals.{ev.name}: the '{ev.split}' split of dataset "
                          f"'{ev.pipeline.dataset.info['name']}' is empty")
      local = ev.pipeline.eval_batch(0, self.config.eval_batch_size, ev.split)
      n = self.config.eval_batch_size
      batch = {k: jax.ShapeDtypeStruct((n,) + np.shape(v)[1:], np.asarray(v).dtype)
               for k, v in local.items()}
      out = jax.eval_shape(fn, state, batch)
      evaluation.check_outputs(ev.evaluators, set(out), f"config.evals.{ev.name}")

  def evaluate_one(self, ev: _Eval, state, meta, shardings, stage: Stage,
                   context: Optional[dict] = None) -> dict:
    """Runs one configured evaluation over its split; returns {metric: float}."""
    _, fn = self._predict_fn(ev, stage, meta, shardings)
    for e in ev.evaluators.values():
      e.reset()
    for local in ev.pipeline.eval_iter(self.config.eval_batch_size, ev.split):
      out = fn(state, shard_lib.global_batch(local, self.mesh))
      rows = shard_lib.local_rows(out, self.mesh)
      for e in ev.evaluators.values():
        e.update(rows, local["_valid"])
    results = {label: e.result(context) for label, e in ev.evaluators.items()}
    seen, res = {}, {}
    for r in results.values():
      for m in r:
        seen[m] = seen.get(m, 0) + 1
    for label, r in results.items():
      for m, v in r.items():
        res[ev.metric_name(label, m, seen[m] > 1)] = v
    return res

  def evaluate(self, state, meta, shardings, stage: Optional[Stage] = None,
               names=None, context: Optional[dict] = None) -> dict:
    """All (or the named) configured evaluations; returns {metric: float}."""
    stage = stage or self.stages[int(meta.get("stage", 0))]
    res = {}
    for name, ev in self.evals.items():
      if names is None or name in names:
        res.update(self.evaluate_one(ev, state, meta, shardings, stage, context))
    return res

  # ------------------------------------------------------------------- run
  def run(self, stop_at_step: Optional[int] = None) -> dict:
    """Trains to the end (or to `stop_at_step`, simulating preemption)."""
    with log_lib.WorkdirLock(self.workdir, self.ctx.is_main):
      return self._run(stop_at_step)

  def _run(self, stop_at_step):
    cfg, ctx = self.config, self.ctx
    t0 = time.time()
    ckpt = ckpt_lib.Checkpointer(self.workdir, cfg.keep_checkpoints)
    say = (lambda m: print(f"jaxvision: {m}", file=sys.stderr)) if ctx.is_main else (lambda m: None)
    restored = self._restore_newest_good(ckpt, say) if ckpt.all_steps() else None
    summary_path = os.path.join(self.workdir, "summary.json")
    if restored is not None:
      state, meta, shardings = restored
      last_saved = int(jax.device_get(state["step"]))
      if meta.get("finished") and os.path.exists(summary_path):
        ckpt.close()
        say(f"the run in {self.workdir} is finished; nothing to do (summary: {summary_path})")
        with open(summary_path) as f:
          summary = json.load(f)
        self.state, self.meta = state, meta
        return summary
      writer = log_lib.MetricWriter(self.workdir, ctx.is_main, resume_step=last_saved)
    else:
      if ctx.is_main:
        moved = log_lib.move_aside_old_logs(self.workdir)
        if moved:
          say(f"{self.workdir} had logs but no checkpoint to resume; moved them aside "
              f"({', '.join(moved)}) and starting fresh")
      writer = log_lib.MetricWriter(self.workdir, ctx.is_main)
      meta = {"stage": 0, "evals": {}, "stage_ends": [], "clock": {"run": 0.0, "stage": 0.0},
              "fingerprint": _jsonable(self.fingerprint())}
      state, shardings = self.init_state(meta)
      if self.method.prepare is not None:
        state = shard_lib.put(self.method.prepare(ctx, state, meta), shardings)
      last_saved = None
    step = int(jax.device_get(state["step"]))
    known = [n for n in self.stage_steps if n is not None]
    total = sum(known) if len(known) == len(self.stage_steps) else None
    flag = _StopFlag()
    bar = log_lib.progress(total, step, ctx.is_main and bool(cfg.get("progress", True)),
                           desc=cfg.method)
    metrics = None
    clock = _Clock(meta.get("clock", {}), bool(cfg.get("clock_excludes_eval", True)))
    self.check_evals(state, meta, shardings, self.stages[int(meta["stage"])])

    def save(state, meta, step):
      nonlocal last_saved
      self._check_finite(metrics, step, last_saved)
      finite, norm = jax.device_get(_health(state))
      if not bool(finite):
        self._check_finite({"loss": float("nan")}, step, last_saved)
      self._check_norm_growth(float(norm), meta, step, last_saved)
      meta["clock"] = clock.snapshot()
      ckpt.save(step, state, copy.deepcopy(meta))  # meta is serialised in a background thread
      last_saved = step

    multihost = jax.process_count() > 1

    def should_stop(step, stage):
      local = (stop_at_step is not None and step >= stop_at_step) or flag.set
      over = stage.seconds is not None and clock.stage >= float(stage.seconds)
      if not multihost:
        return local, over
      if step % cfg.log_every:  # hosts agree on stop/budget decisions at log steps
        return False, False
      from jax.experimental import multihost_utils
      got = np.max(multihost_utils.process_allgather(np.int32([local, over])), axis=0)
      return bool(got[0]), bool(got[1])

    def record_eval(state, meta, shardings, stage, when, names=None):
      with clock.eval():
        # "workdir" / "is_main" let evaluators write artifacts (PNGs) next to the run.
        context = {"step": step, "stage": stage.name, "time": clock.run,
                   "workdir": self.workdir, "is_main": jax.process_index() == 0}
        res = self.evaluate(state, meta, shardings, stage, names, context)
      if when is not None:
        meta.setdefault("evals", {}).setdefault(stage.name, {})[when] = res
      # the anytime learning curve: every evaluation with its wall-clock time
      meta.setdefault("curve", []).append({"step": step, "stage": stage.name,
                                           "time_s": context["time"], **res})
      writer.write(step, {**{f"eval/{k}": v for k, v in res.items()}, "eval/time_s": context["time"]})
      if ctx.is_main:
        bar.write(f"[{stage.name}:{when or 'periodic'} @ step {step}] " +
                  ", ".join(f"{k}={v:.4f}" for k, v in res.items()))
      return res

    def stage_evals(stage):
      return [n for n, ev in self.evals.items() if ev.cfg.get("at_stage_ends", True)]

    try:
      with _sigterm(flag):
        while True:
          si = int(meta["stage"])
          stage = self.stages[si]
          start = meta["stage_ends"][si - 1] if si > 0 else 0
          n = self.stage_steps[si]
          end = None if n is None else start + n
          done = len(meta["stage_ends"]) > si
          if not done:
            train_fn = self._train_fn(stage, meta, shardings)
            horizon = end if end is not None else step + (1 << 40)
            batches = self.pipeline.train_iter(step, horizon) if stage.uses_data else None
            last_eval_t = {name: clock.run for name in self.evals}
            every_s = {name: float(stage.eval_every_seconds or ev.every_seconds)
                       for name, ev in self.evals.items()}
            every_n = {name: int(stage.eval_every_steps or ev.every_steps)
                       for name, ev in self.evals.items()}
            while end is None or step < end:
              if stage.seconds is not None and step > start and should_stop(step, stage)[1]:
                break
              step_started = clock.stage
              if batches is not None:
                state, metrics = train_fn(state, shard_lib.global_batch(next(batches), self.mesh))
              else:
                state, metrics = train_fn(state)
              if stage.seconds is not None:  # the budget counts finished steps
                jax.block_until_ready(metrics)
              step += 1
              bar.update(1)
              if step % cfg.log_every == 0 or step == end:
                m = jax.device_get(metrics)
                self._check_finite(m, step, last_saved)
                writer.write(step, {f"train/{k}": v for k, v in m.items()})
                bar.set_postfix({k: f"{float(v):.4g}" for k, v in list(m.items())[:4]}, refresh=False)
              due = [name for name in self.evals
                     if (every_n[name] and step % every_n[name] == 0 and step != end)
                     or (every_s[name] and clock.run - last_eval_t[name] >= every_s[name])]
              if due:
                record_eval(state, meta, shardings, stage, None, due)
                for name in due:
                  last_eval_t[name] = clock.run
              stop, over = should_stop(step, stage)
              last = (end is not None and step == end) or over
              boundary = last and si + 1 < len(self.stages)
              if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and not boundary:
                save(state, meta, step)
              if stop:
                if last_saved != step:
                  save(state, meta, step)
                raise Preempted(f"stopped at step {step}; checkpoint saved in {ckpt.directory}; "
                                f"run the same command again to resume")
              if over:
                break
            meta["stage_ends"].append(step)
            if stage.seconds is not None and step > start:  # budget reached during the last step
              meta.setdefault("budget_last_step_start", {})[stage.name] = step_started
            meta.setdefault("stage_seconds", []).append(clock.stage)
            clock.new_stage()
          if stage.evaluate and "end" not in meta.get("evals", {}).get(stage.name, {}):
            record_eval(state, meta, shardings, stage, "end", stage_evals(stage))
          if si + 1 == len(self.stages):
            break
          nxt = self.stages[si + 1]
          if self.method.transition is not None:
            host = shard_lib.to_host(state)
            state, new_meta = self.method.transition(ctx, host, meta, nxt)
            meta = {**meta, **new_meta}
          meta["stage"] = si + 1
          shardings = self._check_transition(state, meta, nxt)
          state = shard_lib.put(state, shardings)
          if nxt.evaluate:
            record_eval(state, meta, shardings, nxt, "start", stage_evals(nxt))
          save(state, meta, step)
        meta["finished"] = True
        save(state, meta, step)
    finally:
      bar.close()
      ckpt.close()
      writer.close()

    final = meta.get("evals", {}).get(self.stages[-1].name, {}).get("end", {})
    summary = {
        "method": cfg.method, "models": {r: rc.name for r, rc in cfg.models.items()},
        "dataset": cfg.dataset.name, "steps": step, "length": self.length_rule,
        "stages": meta.get("evals", {}), "curve": meta.get("curve", []), "final": final,
        "wall_time_s": time.time() - t0, "devices": jax.device_count(),
        "processes": jax.process_count(), "backend": jax.default_backend(),
        "jax_version": jax.__version__, "config": cfg.to_dict(),
    }
    if self.method.summary is not None:
      summary.update(self.method.summary(ctx, state, meta))
    if ctx.is_main:
      log_lib.write_json(summary_path, summary)
    self.state, self.meta = state, meta
    return summary

  def _check_transition(self, state, meta, stage):
    """The transitioned state must be what init(meta) rebuilds on resume; returns its shardings."""
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

  def _check_norm_growth(self, norm, meta, step, last_saved):
    """A checkpoint is 'good' only if the parameter norm stayed within
    config.max_norm_growth x its norm at the first save of the run (finite but exploded
    weights, e.g. 1e15, are not saved as good)."""
    limit = float(self.config.get("max_norm_growth", 0.0) or 0.0)
    if not limit:
      return
    base = meta.setdefault("norm_at_first_save", norm)
    if base > 0 and norm > limit * base:
      where = f"step {last_saved}" if last_saved is not None else "none yet"
      raise TrainingDivergedError(
          f"parameter norm {norm:.3g} at step {step} is over {limit:g}x its first saved value "
          f"{base:.3g}: the run diverged; stopped without saving (last good checkpoint: {where}). "
          f"Rerun the same command with a lower learning rate (--config.optims.<role>.lr) to "
          f"resume from it.")

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


_VOLATILE_META = ("evals", "fingerprint", "clock", "curve", "stage_ends", "stage_seconds",
                  "finished", "budget_last_step_start", "norm_at_first_save")


_COMPILED: "collections.OrderedDict[str, tuple[dict, dict]]" = collections.OrderedDict()
_COMPILED_MAX = 4  # configs whose compiled functions stay in memory (least recently used out)


def _compiled_cache(config, mesh) -> tuple[dict, dict]:
  """(compiled functions, trace counts) for this config and mesh, shared within the process.

  Everything a compiled function closes over is built from the config, the mesh and the
  meta key, so Trainers that agree on those may share them; a config that does not
  serialise exactly gets a private cache.
  """
  try:
    key = json.dumps([config.to_dict(), [d.id for d in mesh.devices.flat],
                      list(mesh.devices.shape), list(mesh.axis_names), jax.process_index()],
                     sort_keys=True)
  except (TypeError, ValueError):
    return {}, {}
  if key not in _COMPILED:
    _COMPILED[key] = ({}, {})
    while len(_COMPILED) > _COMPILED_MAX:
      _COMPILED.popitem(last=False)
  _COMPILED.move_to_end(key)
  return _COMPILED[key]


def _meta_key(meta: dict) -> str:
  return json.dumps({k: v for k, v in meta.items() if k not in _VOLATILE_META},
                    sort_keys=True, default=str)


def _jsonable(x):
  return json.loads(json.dumps(x, default=str))


class _Clock:
  """Run and stage clocks in seconds, resumable from meta; eval time excluded when asked."""

  def __init__(self, saved: dict, exclude_eval: bool):
    self.run_base, self.stage_base = float(saved.get("run", 0.0)), float(saved.get("stage", 0.0))
    self.exclude_eval = exclude_eval
    self.t0 = time.time()
    self.paused = 0.0

  def _elapsed(self) -> float:
    return time.time() - self.t0 - self.paused

  @property
  def run(self) -> float:
    return self.run_base + self._elapsed()

  @property
  def stage(self) -> float:
    return self.stage_base + self._elapsed()

  @contextlib.contextmanager
  def eval(self):
    t = time.time()
    try:
      yield
    finally:
      if self.exclude_eval:
        self.paused += time.time() - t

  def new_stage(self):
    self.stage_base = -self._elapsed()

  def snapshot(self) -> dict:
    return {"run": self.run, "stage": self.stage}


def _compilation_cache(config) -> None:
  """Turns on JAX's persistent compilation cache (config.compilation_cache) unless set."""
  if not config.get("compilation_cache", True) or jax.config.jax_compilation_cache_dir:
    return
  path = os.environ.get("JAXVISION_CACHE_DIR",
                        os.path.join(os.path.expanduser("~"), ".cache", "jaxvision", "xla"))
  try:
    os.makedirs(path, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
  except OSError:
    pass


def _run_once_options() -> Optional[dict]:
  """XLA options for programs that run once (the random init): on CPU, LLVM at -O0
  compiles the per-parameter PRNG code about 3x faster and the init still takes well
  under a second; other backends keep their defaults."""
  if jax.default_backend() != "cpu":
    return None
  return {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


_HEALTH_CHUNK = 1 << 24  # elements per concatenated group (bounds the temporary copy)


def _health(state) -> tuple[jax.Array, jax.Array]:
  """(every floating leaf of the state is finite, L2 norm of state["models"]): one program,
  checked before each save. Fully replicated leaves are concatenated into a few large
  vectors first: one reduction per leaf made XLA compile for seconds on states of hundreds
  of leaves (15 s on CPU for LaConvNet's); sharded (fsdp) leaves keep their own reductions,
  so nothing is gathered."""
  def floats(tree):
    return [x for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)]
  models = floats(state["models"])
  ids = {id(x) for x in models}
  rest = [x for x in floats(state) if id(x) not in ids]
  return _health_program(*map(_health_groups, (models, rest)))


def _health_groups(leaves) -> tuple[tuple, tuple]:
  """-> (chunks of fully replicated leaves, each a tuple of at most _HEALTH_CHUNK elements in
  all (a bigger leaf alone), the other leaves)."""
  chunks, cur, n, other = [], [], 0, []
  for x in leaves:
    sharding = getattr(x, "sharding", None)
    if sharding is not None and not sharding.is_fully_replicated:
      other.append(x)
      continue
    if cur and n + x.size > _HEALTH_CHUNK:
      chunks.append(tuple(cur))
      cur, n = [], 0
    cur.append(x)
    n += x.size
  if cur:
    chunks.append(tuple(cur))
  return tuple(chunks), tuple(other)


@jax.jit
def _health_program(models, rest) -> tuple[jax.Array, jax.Array]:
  def arrays(groups):
    chunks, other = groups
    return [jnp.concatenate([x.astype(jnp.float32).ravel() for x in c]) for c in chunks] + [
        x.astype(jnp.float32) for x in other]
  m, r = arrays(models), arrays(rest)
  finite = jnp.array(True)
  for x in m + r:
    finite &= jnp.all(jnp.isfinite(x))
  sq = jnp.zeros((), jnp.float32)
  for x in m:
    sq += jnp.sum(jnp.square(x))
  return finite, jnp.sqrt(sq)


def train(config, workdir: str, stop_at_step: Optional[int] = None) -> dict:
  """Runs (or resumes) `config` in `workdir`; returns the summary dict."""
  return Trainer(config, workdir).run(stop_at_step=stop_at_step)
