"""Masks applied functionally to an NNX param state (no model code changes).

`apply_masks(params, masks, scores)` returns a param state whose selected
kernels are `W * M`; merge it with `nnx.merge(graphdef, masked_params, rest)`.
Gradients flow through `masked_weight`'s straight-through rule:
dL/dW = G * M and (if scores are given) dL/dS = G * W, G = dL/d(W*M).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxvision import kernels
from jaxvision.sparsity import paths as paths_lib


def masked_weight(w: jax.Array, scores=None, *, mask: jax.Array, impl: str = "auto") -> jax.Array:
  """W * M with the OptG STE backward (weights get g*m, scores get g*w).

  Args:
    w: weight, any shape (float32 / bf16).
    scores: fp32 scores of w's shape, or None (then only w gets g*m).
    mask: bool / {0,1} array of w's shape (held fixed: no gradient).
    impl: kernel implementation ("auto": fused Pallas on GPU/TPU, XLA on CPU).
  The one switch point to the fused kernel (`jaxvision.kernels.masked_weight`).
  """
  if mask.shape != w.shape:
    raise ValueError(f"mask shape {mask.shape} != weight shape {w.shape}")
  return kernels.masked_weight(w, scores, mask=mask, impl=impl)


def init_masks(params, keys) -> dict:
  """All-ones bool masks (nested dict mirroring params) for the selected keys."""
  flat = dict(paths_lib.leaves_with_paths(params))
  missing = [paths_lib.path_str(k) for k in keys if k not in flat]
  if missing:
    raise ValueError(f"no parameter at sparsity paths {missing}")
  return paths_lib.nest({k: jnp.ones(flat[k].shape, jnp.bool_) for k in keys})


def init_scores(masks: dict) -> dict:
  """OptG scores: fp32 zeros shaped like the masks."""
  return jax.tree.map(lambda m: jnp.zeros(m.shape, jnp.float32), masks)


def apply_masks(params, masks: dict, scores: dict | None = None):
  """Returns params with each masked leaf replaced by `masked_weight(W, S, mask=M)`.

  Works on an `nnx.State` or a nested dict; unmasked leaves pass through.
  """
  fm = paths_lib.flatten(masks)
  fs = paths_lib.flatten(scores) if scores is not None else {}

  def f(kp, leaf):
    keys = paths_lib.key_tuple(kp)
    if keys in fm:
      return masked_weight(leaf, fs.get(keys) if scores is not None else None, mask=fm[keys])
    return leaf

  return jax.tree_util.tree_map_with_path(f, params)


def get_leaves(params, masks: dict) -> dict:
  """{key tuple: weight} of params at the masked keys (same order as masks)."""
  flat = dict(paths_lib.leaves_with_paths(params))
  return {k: flat[k] for k in paths_lib.flatten(masks)}


def map_masked(fn, params, masks: dict, *others: dict):
  """Replaces masked leaves with fn(W, M, *other_leaves); others are mask-shaped dicts."""
  fm = paths_lib.flatten(masks)
  fo = [paths_lib.flatten(o) for o in others]

  def f(kp, leaf):
    keys = paths_lib.key_tuple(kp)
    if keys in fm:
      return fn(leaf, fm[keys], *[o[keys] for o in fo])
    return leaf

  return jax.tree_util.tree_map_with_path(f, params)


def sparsity(masks: dict) -> jax.Array:
  """1 - sum(M)/N over all masked tensors (scalar float32)."""
  ms = jax.tree.leaves(masks)
  n = sum(m.size for m in ms)
  kept = sum(jnp.sum(m, dtype=jnp.int32) for m in ms)
  return 1.0 - kept.astype(jnp.float32) / n


def layer_sparsity(masks: dict) -> dict:
  """{path string: 1 - mean(M)} per masked tensor."""
  return {paths_lib.path_str(k): 1.0 - jnp.mean(m.astype(jnp.float32))
          for k, m in paths_lib.flatten(masks).items()}


def weight_sparsity(params, masks: dict) -> jax.Array:
  """OptG's getSparsity: 1 - sum nnz(W*M) / sum numel over masked tensors."""
  w = get_leaves(params, masks)
  fm = paths_lib.flatten(masks)
  n = sum(v.size for v in w.values())
  nnz = sum(jnp.sum((w[k] * fm[k]) != 0, dtype=jnp.int32) for k in w)
  return 1.0 - nnz.astype(jnp.float32) / n
