"""Export a trained sparse model with its masks applied, and load it back alone.

Layout of an export directory::

  params.npz   one array per leaf, keys "params/<path>" (masked kernels are W*M,
               exact zeros) and "rest/<path>" (BN statistics, ...)
  meta.json    {"model": name, "num_classes", "widths", "model_kwargs",
                "masked": [paths], "sparsity", ...}

`load(path)` rebuilds the model from the registry (`jaxvision.models.build`)
and fills in the arrays, so evaluation needs neither the training state nor
the sparsity code.
"""
from __future__ import annotations

import json
import os
from typing import Any, Optional

import jax
import numpy as np
from flax import nnx

from jaxvision.sparsity import masking
from jaxvision.sparsity import paths as paths_lib


def _to_jsonable(x):
  if isinstance(x, (list, tuple)):
    return [_to_jsonable(v) for v in x]
  if isinstance(x, dict):
    return {str(k): _to_jsonable(v) for k, v in x.items()}
  if isinstance(x, (np.integer,)):
    return int(x)
  if isinstance(x, (np.floating,)):
    return float(x)
  return x


def save_arrays(path: str, params, rest, masks: dict, *, model: str, num_classes: int,
                widths=None, model_kwargs: Optional[dict] = None, extra: Optional[dict] = None):
  """Writes `path/params.npz` (masks applied) and `path/meta.json`.

  Args:
    params, rest: NNX param state and the non-param state (BN stats) of the model.
    masks: nested bool masks (`state["extras"]["masks"]`), {} for dense.
  """
  os.makedirs(path, exist_ok=True)
  params, rest, masks = jax.device_get((params, rest, masks))
  if masks:
    params = masking.map_masked(lambda w, m: np.asarray(w) * np.asarray(m, w.dtype), params, masks)
  arrays = {}
  for prefix, tree in (("params", params), ("rest", rest)):
    for keys, leaf in paths_lib.leaves_with_paths(tree):
      arrays[f"{prefix}/{paths_lib.path_str(keys)}"] = np.asarray(leaf)
  np.savez(os.path.join(path, "params.npz"), **arrays)
  masked = [paths_lib.path_str(k) for k in paths_lib.flatten(masks)] if masks else []
  kept = sum(int(np.sum(m)) for m in jax.tree.leaves(masks))
  n = sum(int(np.size(m)) for m in jax.tree.leaves(masks))
  meta = {"model": model, "num_classes": int(num_classes), "widths": _to_jsonable(widths),
          "model_kwargs": _to_jsonable(dict(model_kwargs or {})), "masked": masked,
          "sparsity": 1.0 - kept / n if n else 0.0, **_to_jsonable(dict(extra or {}))}
  with open(os.path.join(path, "meta.json"), "w") as f:
    json.dump(meta, f, indent=1)
  return path


def save(path: str, ctx, state, meta: dict, role: str = "student"):
  """Exports state["models"][role] of a run (RunContext `ctx`) with masks applied."""
  cfg = ctx.config
  ms = state["models"][role]
  from jaxvision.core import roles
  rc = roles.role_cfg(cfg, role)
  kw = {"dtype": cfg.dtype, **dict(rc.get("kwargs", {}))}
  return save_arrays(path, ms["params"], ms["rest"], state["extras"].get("masks", {}),
                     model=rc.name, num_classes=roles.num_outputs(ctx, role),
                     widths=roles.role_widths(meta, role), model_kwargs=kw,
                     extra={"dataset": cfg.dataset.name, "method": cfg.get("method", ""),
                            # the whole block, so evaluate() rebuilds the run's eval set
                            "dataset_config": cfg.dataset.to_dict()})


def load(path: str) -> tuple[nnx.Module, dict]:
  """Rebuilds the exported model. Returns (model, meta). Call `model(x, train=False)`."""
  from jaxvision import models
  mpath, apath = os.path.join(path, "meta.json"), os.path.join(path, "params.npz")
  if not (os.path.exists(mpath) and os.path.exists(apath)):
    raise FileNotFoundError(f"{path} is not a sparse export (needs meta.json and params.npz; "
                            "written by jaxvision.sparsity.export.save)")
  with open(mpath) as f:
    meta = json.load(f)
  arrays = np.load(apath)
  model = models.build(meta["model"], meta["num_classes"], rngs=nnx.Rngs(0),
                       widths=meta.get("widths"), **meta.get("model_kwargs", {}))
  gdef, params, rest = nnx.split(model, nnx.Param, ...)

  def fill(prefix):
    def f(kp, leaf):
      key = f"{prefix}/{paths_lib.path_str(paths_lib.key_tuple(kp))}"
      if key not in arrays:
        raise ValueError(f"export {path} lacks array {key!r}; was it made for another model?")
      a = arrays[key]
      if a.shape != leaf.shape:
        raise ValueError(f"export array {key!r} has shape {a.shape}, model expects {leaf.shape}")
      return jax.numpy.asarray(a, leaf.dtype)
    return f

  params = jax.tree_util.tree_map_with_path(fill("params"), params)
  rest = jax.tree_util.tree_map_with_path(fill("rest"), rest)
  return nnx.merge(gdef, params, rest), meta


def sparsity_of(model: nnx.Module, masked: list[str]) -> float:
  """1 - nnz/numel over the kernels at `masked` paths of a loaded model."""
  flat = {paths_lib.path_str(k): v for k, v in paths_lib.leaves_with_paths(nnx.state(model, nnx.Param))}
  n = sum(flat[p].size for p in masked)
  nnz = sum(int(np.count_nonzero(np.asarray(flat[p]))) for p in masked)
  return 1.0 - nnz / n if n else 0.0
