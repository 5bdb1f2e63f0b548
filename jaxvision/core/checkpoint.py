"""Orbax checkpoints: the only module that touches orbax.

Each checkpoint is `Composite(state=<pytree>, meta=<json>)`. Saves are async
and atomic (orbax writes to a temporary directory and renames it). Restores
read `meta` first, so the caller can rebuild an abstract target of the right
structure (with shardings) before restoring the state into it.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Optional

import jax
import orbax.checkpoint as ocp


def _array_handler() -> None:
  """Replica-parallel saving (orbax's default off GPU) splits every replicated leaf
  between its replicas with one compiled slice per leaf shape: hundreds of compiles per
  run and no gain within one process. It is kept where it spreads writes over hosts."""
  parallel = jax.process_count() > 1
  current = ocp.type_handlers.get_type_handler(jax.Array)
  if getattr(current, "_use_replica_parallel", parallel) != parallel:
    from absl import logging as absl_logging
    level = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.ERROR)  # orbax warns about every override
    try:
      ocp.type_handlers.register_type_handler(
          jax.Array, ocp.type_handlers.ArrayHandler(use_replica_parallel=parallel), override=True)
    finally:
      absl_logging.set_verbosity(level)


class Checkpointer:
  """Thin wrapper over ocp.CheckpointManager for `workdir/checkpoints`."""

  def __init__(self, workdir: str, keep: int = 2, async_save: bool = True):
    _array_handler()
    self.directory = os.path.join(os.path.abspath(workdir), "checkpoints")
    opts = ocp.CheckpointManagerOptions(max_to_keep=max(1, keep), create=True,
                                        enable_async_checkpointing=async_save)
    self.manager = ocp.CheckpointManager(self.directory, options=opts)

  def latest_step(self) -> Optional[int]:
    return self.manager.latest_step()

  def all_steps(self) -> list[int]:
    return list(self.manager.all_steps())

  def move_aside(self, step: int) -> str:
    """Moves a damaged step out of the manager's way (never deletes it); returns its new path."""
    import time
    src = os.path.join(self.directory, str(step))
    dst_dir = os.path.join(os.path.dirname(self.directory), "checkpoints_damaged")
    os.makedirs(dst_dir, exist_ok=True)
    dst = os.path.join(dst_dir, f"{step}-{time.strftime('%Y%m%d-%H%M%S')}")
    if os.path.exists(src):
      os.replace(src, dst)
    self.manager.reload()
    return dst

  def save(self, step: int, state: Any, meta: dict) -> None:
    if step in self.manager.all_steps():
      self.manager.wait_until_finished()
      self.manager.delete(step)
    self.manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)), force=True)

  def restore_meta(self, step: int) -> dict:
    out = self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
    return dict(out["meta"])

  def restore(self, step: int, abstract_state: Any) -> Any:
    """Restores into `abstract_state` (ShapeDtypeStructs carrying shardings)."""
    out = self.manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state)))
    return out["state"]

  def wait(self) -> None:
    self.manager.wait_until_finished()

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()


def load_model_state(path: str, target: Any, role: str = "student", skip=()) -> Any:
  """Loads state["models"][role] of the latest checkpoint under `path` into the
  structure of `target` (matched by tree path; shapes must agree).

  skip: layer path prefixes (e.g. "head": its params and batch statistics) whose leaves keep
  `target`'s values, e.g. a new head on a trunk trained for another task; every other leaf
  must be in the checkpoint."""
  path = os.path.abspath(os.path.expanduser(path))
  if not os.path.isdir(path):
    from jaxvision.core.errors import ConfigError
    raise ConfigError(f"init checkpoint {path} does not exist; pass the --workdir of a finished run")
  if os.path.isdir(os.path.join(path, "checkpoints")):
    path = os.path.join(path, "checkpoints")
  mngr = ocp.CheckpointManager(path, item_handlers={"state": ocp.StandardCheckpointHandler(),
                                                 "meta": ocp.JsonCheckpointHandler()})
  step = mngr.latest_step()
  if step is None:
    raise FileNotFoundError(f"no orbax checkpoint under {path}; pass the workdir of a finished run")
  # Restore onto one local device whatever mesh wrote it (a baseline trained on 8 GPUs
  # loads in Colab); the caller re-shards.
  one = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  md = mngr.item_metadata(step)["state"]
  on_one = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=one), md)
  raw = mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(on_one)))["state"]
  mngr.close()
  try:
    sub = raw["models"][role]
  except KeyError as e:
    raise KeyError(f"checkpoint {path} has no models/{role}") from e
  from jaxvision.core.sharding import path_str
  flat = {path_str(p): v for p, v in jax.tree_util.tree_flatten_with_path(sub)[0]}

  skip = tuple(str(s).strip("/") for s in skip)
  unused = set(skip)

  def pick(p, leaf):
    key = path_str(p)
    head, _, inner = key.partition("/")
    names = (key, inner) if head in ("params", "rest") else (key,)  # "head" = params+rest
    hit = [s for s in skip for k in names if k == s or k.startswith(s + "/")]
    if hit:
      unused.difference_update(hit)
      return leaf
    cands = [k for k in (key, key.replace("/value", ""), key + "/value") if k in flat]
    if not cands:
      raise KeyError(f"checkpoint {path} lacks models/{role}/{key}")
    v = flat[cands[0]]
    if tuple(v.shape) != tuple(leaf.shape):
      raise ValueError(f"models/{role}/{key}: checkpoint shape {tuple(v.shape)} != model "
                       f"shape {tuple(leaf.shape)}; build the same model/widths")
    return jax.numpy.asarray(v, leaf.dtype)

  out = jax.tree_util.tree_map_with_path(pick, target)
  if unused:
    raise ValueError(f"init.skip prefixes {sorted(unused)} match no leaf of models/{role}; "
                     "use tree paths such as 'head' or 'stages/0'.")
  return out


def abstract_with_shardings(abstract: Any, shardings: Any) -> Any:
  return jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                      abstract, shardings)
