"""Surgery: copy the kept filters of a model into a narrower one built from new widths.

A `Plan` names index sets (kept output channels, ascending) and, per layer path, which set
slices the layer's input and which its output:

  conv kernel [kh, kw, cin, cout]: axis 2 <- in set, axis 3 <- out set; bias [cout] <- out
  dense kernel [cin, cout]:        axis 0 <- in set, axis 1 <- out set; bias [cout] <- out
  BatchNorm scale/bias/mean/var [c]: <- out set

Params listed in `Plan.reinit` get fresh values instead (the official code's BN / bias /
classifier re-initialisation): 'ones', 'zeros' or 'normal:<std>'. Every other parameter is
copied (sliced). The narrow model is built abstractly (`nnx.eval_shape`) and filled, so no
random init has to be compiled.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Optional

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

_VEC = ("bias", "scale", "mean", "var")


@dataclasses.dataclass
class Plan:
  """What to keep. Paths are '/'-joined nnx paths ('convs/3', 'layer1/0/bn1/scale')."""
  widths: Any                                            # widths structure for models.build
  index_sets: dict[str, np.ndarray]                      # set name -> kept indices (ascending)
  layers: dict[str, tuple[Optional[str], Optional[str]]]  # layer path -> (in set, out set)
  reinit: dict[str, str] = dataclasses.field(default_factory=dict)  # param path -> init

  def kept(self) -> dict[str, list[int]]:
    """JSON-able kept indices per index set."""
    return {k: [int(i) for i in v] for k, v in self.index_sets.items()}


def flatten(tree: Mapping, prefix: tuple = ()) -> dict[str, Any]:
  """Nested pure dict (nnx.to_pure_dict) -> {'a/0/b': leaf}."""
  out = {}
  for k, v in tree.items():
    p = prefix + (k,)
    if isinstance(v, Mapping):
      out.update(flatten(v, p))
    else:
      out["/".join(str(x) for x in p)] = v
  return out


def unflatten_into(tree: Mapping, flat: Mapping[str, Any], prefix: tuple = ()) -> dict:
  """Rebuilds `tree`'s nested structure with leaves taken from `flat`."""
  out = {}
  for k, v in tree.items():
    p = prefix + (k,)
    out[k] = (unflatten_into(v, flat, p) if isinstance(v, Mapping)
              else flat["/".join(str(x) for x in p)])
  return out


def _take(a: np.ndarray, idx: Optional[np.ndarray], axis: int) -> np.ndarray:
  return a if idx is None else np.take(a, idx, axis=axis)


def slice_param(name: str, value: np.ndarray, in_idx, out_idx) -> np.ndarray:
  """Slices one parameter of a conv / dense / BN layer (see module docstring)."""
  v = np.asarray(value)
  if name == "kernel" and v.ndim == 4:
    return _take(_take(v, in_idx, 2), out_idx, 3)
  if name == "kernel" and v.ndim == 2:
    return _take(_take(v, in_idx, 0), out_idx, 1)
  if name in _VEC and v.ndim == 1:
    return _take(v, out_idx, 0)
  raise ValueError(f"don't know how to slice parameter '{name}' of shape {v.shape}; "
                   "supported: conv/dense 'kernel', and 'bias'/'scale'/'mean'/'var' vectors.")


def fresh_value(kind: str, shape, dtype, rng: np.random.Generator) -> np.ndarray:
  """'ones' | 'zeros' | 'normal:<std>' -> array of `shape`."""
  if kind == "ones":
    return np.ones(shape, dtype)
  if kind == "zeros":
    return np.zeros(shape, dtype)
  if kind.startswith("normal:"):
    return (rng.standard_normal(shape) * float(kind.split(":", 1)[1])).astype(dtype)
  raise ValueError(f"unknown re-init kind {kind!r}; use 'ones', 'zeros' or 'normal:<std>'.")


def transfer(old: Mapping, new: Mapping, plan: Plan, seed: int = 0) -> dict:
  """Returns `new`'s structure (pure dict of the narrow model; arrays or ShapeDtypeStructs)
  filled from `old` (pure dict of the original model) per `plan`."""
  old_f, new_f = flatten(old), flatten(new)
  rng = np.random.default_rng(seed)
  known = {p.rsplit("/", 1)[0] for p in old_f}
  missing = sorted(set(plan.layers) - known)
  if missing:
    raise ValueError(f"plan names layers that the model does not have: {missing[:5]}.")
  out = {}
  for path, fresh in new_f.items():
    if path in plan.reinit:
      out[path] = fresh_value(plan.reinit[path], tuple(fresh.shape), fresh.dtype, rng)
      continue
    if path not in old_f:
      raise ValueError(f"narrow model has parameter '{path}' that the original lacks.")
    layer, name = path.rsplit("/", 1) if "/" in path else ("", path)
    if layer in plan.layers:
      si, so = plan.layers[layer]
      v = slice_param(name, old_f[path], plan.index_sets.get(si) if si else None,
                      plan.index_sets.get(so) if so else None)
    else:
      v = np.asarray(old_f[path])
    if tuple(v.shape) != tuple(fresh.shape):
      raise ValueError(f"surgery shape mismatch at '{path}': copied {tuple(v.shape)} but the "
                       f"narrow model expects {tuple(fresh.shape)}; the plan's widths and "
                       "index sets disagree.")
    out[path] = v.astype(fresh.dtype)
  return unflatten_into(new, out)


def narrow_model(model: nnx.Module, plan: Plan, build_fn: Callable[[Any], nnx.Module],
                 seed: int = 0) -> nnx.Module:
  """The narrow model `build_fn(plan.widths)` holding `model`'s kept weights.

  build_fn(widths) -> nnx.Module is only traced (nnx.eval_shape), never run eagerly.
  """
  abstract = nnx.eval_shape(lambda: build_fn(plan.widths))
  graphdef, st = nnx.split(abstract)
  filled = transfer(nnx.to_pure_dict(nnx.state(model)), nnx.to_pure_dict(st), plan, seed)
  nnx.replace_by_pure_dict(st, jax.tree.map(jnp.asarray, filled))
  return nnx.merge(graphdef, st)
