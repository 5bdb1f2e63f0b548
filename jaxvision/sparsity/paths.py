"""Parameter paths and the regex selection of which parameters get a mask.

A *path* is the '/'-joined key sequence of a leaf in an NNX param state (or a
plain nested dict), e.g. ``"layer1/0/conv1/kernel"``. Masks and scores are
nested dicts that mirror the param tree, holding only the selected leaves, so
sharding rules written for parameter paths also match them.
"""
from __future__ import annotations

import re
from typing import Any, Iterable, Optional

import jax
from flax import traverse_util

# Every conv / dense kernel (the classifier included); BN scale/bias and biases
# never match. `min_ndim` below also keeps 1-D tensors out.
DEFAULT_INCLUDE = r"(^|/)kernel$"


def _key(k) -> Any:
  if isinstance(k, jax.tree_util.DictKey):
    return k.key
  if isinstance(k, jax.tree_util.SequenceKey):
    return k.idx
  if isinstance(k, jax.tree_util.GetAttrKey):
    return k.name
  if isinstance(k, jax.tree_util.FlattenedIndexKey):
    return k.key
  raise TypeError(f"unsupported pytree key {k!r}")


def key_tuple(keypath) -> tuple:
  """jax key path -> tuple of raw keys, without NNX's trailing `.value`."""
  keys = tuple(_key(k) for k in keypath)
  if keypath and isinstance(keypath[-1], jax.tree_util.GetAttrKey) and keys[-1] == "value":
    keys = keys[:-1]
  return keys


def path_str(keys: Iterable) -> str:
  return "/".join(str(k) for k in keys)


def leaves_with_paths(tree) -> list[tuple[tuple, Any]]:
  """[(key tuple, leaf)] for an NNX State or nested dict, in tree order."""
  flat, _ = jax.tree_util.tree_flatten_with_path(tree)
  return [(key_tuple(kp), leaf) for kp, leaf in flat]


def select(params, include: str = DEFAULT_INCLUDE, exclude: Optional[str] = None,
           min_ndim: int = 2) -> list[tuple]:
  """Key tuples of the leaves to sparsify.

  Args:
    params: NNX param state (or nested dict) of float arrays.
    include: regex searched in each path string; default every `kernel`.
    exclude: optional regex; matching paths stay dense (e.g. first/last layer).
    min_ndim: leaves with fewer dims (biases, BN) are never selected.
  Returns:
    key tuples in tree order. Raises ValueError if nothing matches.
  """
  try:
    inc = re.compile(include)
    exc = re.compile(exclude) if exclude else None
  except re.error as e:
    raise ValueError(f"bad sparsity include/exclude regex: {e}") from e
  out = []
  for keys, leaf in leaves_with_paths(params):
    p = path_str(keys)
    if getattr(leaf, "ndim", 0) < min_ndim:
      continue
    if inc.search(p) and not (exc and exc.search(p)):
      out.append(keys)
  if not out:
    names = [path_str(k) for k, _ in leaves_with_paths(params)]
    raise ValueError(
        f"sparsity include={include!r} exclude={exclude!r} matches no parameter "
        f"with ndim>={min_ndim}; parameter paths are: {names[:20]}")
  return out


def nest(flat: dict) -> dict:
  """{key tuple: value} -> nested dict mirroring the param tree."""
  return traverse_util.unflatten_dict(dict(flat))


def flatten(tree: dict) -> dict:
  """Nested mask/score dict -> {key tuple: array} (sorted, deterministic)."""
  flat = traverse_util.flatten_dict(tree) if tree else {}
  return dict(sorted(flat.items(), key=lambda kv: path_str(kv[0])))


def first_last_layers(model) -> tuple[str, str]:
  """Paths of the first and last conv/dense kernel in graph (definition) order.

  Used for the `dense_first_last` ablation; assumes modules are defined in
  execution order, as in the jaxvision model zoo.
  """
  from flax import nnx  # local: keep module import light
  found = []
  for path, node in nnx.iter_graph(model):
    if isinstance(node, (nnx.Conv, nnx.Linear)):
      found.append(path_str(tuple(path) + ("kernel",)))
  if not found:
    raise ValueError("model has no nnx.Conv / nnx.Linear layers")
  return found[0], found[-1]
