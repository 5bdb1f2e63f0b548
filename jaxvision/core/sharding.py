"""Mesh, parameter shardings from path rules, and host-local -> global batches."""
from __future__ import annotations

import math
import re
from typing import Any, Sequence

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

FSDP_MIN_SIZE = 1 << 14  # arrays smaller than this stay replicated under 'fsdp'


class MeshError(ValueError):
  """config.mesh does not fit the visible devices."""


def make_mesh(mesh_cfg) -> jax.sharding.Mesh:
  """Mesh from config.mesh (shape with one -1 allowed, axes names), Auto axis types."""
  shape, axes = list(mesh_cfg.shape), tuple(mesh_cfg.axes)
  n = jax.device_count()
  if shape.count(-1) > 1:
    raise MeshError(f"config.mesh.shape={tuple(shape)} has more than one -1")
  if -1 in shape:
    rest = math.prod(s for s in shape if s != -1)
    if n % rest:
      raise MeshError(f"config.mesh.shape={tuple(shape)} does not divide {n} devices")
    shape[shape.index(-1)] = n // rest
  if math.prod(shape) > n:
    raise MeshError(f"config.mesh.shape={tuple(shape)} needs {math.prod(shape)} devices, "
                     f"but {n} are visible; use -1 for the data axis")
  # A mesh smaller than the visible devices uses the first prod(shape) of them.
  devices = jax.devices()[:math.prod(shape)]
  return jax.make_mesh(tuple(shape), axes, axis_types=(jax.sharding.AxisType.Auto,) * len(axes),
                       devices=devices)


def path_str(path) -> str:
  """'models/student/layers/0/kernel' from a jax tree path."""
  parts = []
  for k in path:
    for attr in ("key", "name", "idx"):
      if hasattr(k, attr):
        parts.append(str(getattr(k, attr)))
        break
    else:
      parts.append(str(k))
  return "/".join(parts)


def _fsdp_spec(shape: Sequence[int], data_size: int) -> P:
  if math.prod(shape) < FSDP_MIN_SIZE or data_size == 1:
    return P()
  dims = sorted(range(len(shape)), key=lambda d: -shape[d])
  for d in dims:
    if shape[d] % data_size == 0:
      spec = [None] * len(shape)
      spec[d] = "data"
      return P(*spec)
  return P()


def state_shardings(abstract_state: Any, mesh, mode: str = "replicate",
                    rules: Sequence[tuple[str, P]] = ()) -> Any:
  """NamedShardings for a state tree.

  Args:
    abstract_state: pytree of ShapeDtypeStruct (from jax.eval_shape).
    mode: 'replicate' (all replicated) or 'fsdp' (large arrays sharded on their
      largest dimension divisible by the 'data' axis).
    rules: (regex over the '/'-joined path, PartitionSpec) pairs, first match
      wins; they override `mode` (e.g. batch-shaped synthetic images on 'data').
  """
  data_size = mesh.shape["data"]
  compiled = [(re.compile(r), spec) for r, spec in rules]

  def one(path, leaf):
    name = path_str(path)
    for rx, spec in compiled:
      if rx.search(name):
        return NamedSharding(mesh, spec)
    shape = getattr(leaf, "shape", ())
    spec = _fsdp_spec(shape, data_size) if mode == "fsdp" else P()
    return NamedSharding(mesh, spec)

  return jax.tree_util.tree_map_with_path(one, abstract_state)


def batch_sharding(mesh) -> NamedSharding:
  return NamedSharding(mesh, P("data"))


def replicated(mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def global_batch(local: dict, mesh) -> dict:
  """Host-local numpy batch (this process's rows) -> global arrays sharded on 'data'."""
  sh = batch_sharding(mesh)
  return {k: jax.make_array_from_process_local_data(sh, np.asarray(v)) for k, v in local.items()}


def local_rows(tree: Any, mesh) -> Any:
  """Per-example outputs sharded on 'data' -> this process's rows as numpy (all rows on one host)."""
  if jax.process_count() == 1:
    return jax.tree.map(np.asarray, jax.device_get(tree))
  from jax.experimental import multihost_utils
  local = multihost_utils.global_array_to_host_local_array(tree, mesh, P("data"))
  return jax.tree.map(np.asarray, local)


def to_host(tree: Any) -> Any:
  """A (possibly fsdp-sharded, multi-process) state -> full numpy arrays on every host."""
  leaves = jax.tree.leaves(tree)
  if all(getattr(x, "is_fully_addressable", True) for x in leaves):
    return jax.device_get(tree)
  from jax.experimental import multihost_utils
  return jax.tree.map(np.asarray, multihost_utils.process_allgather(tree, tiled=True))


def put(tree: Any, shardings: Any) -> Any:
  """Full host (or device) values, identical on every host -> arrays with `shardings`."""
  if jax.process_count() == 1:
    return jax.device_put(tree, shardings)

  def one(x, s):
    if isinstance(x, jax.Array) and x.sharding == s:
      return x
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, s, lambda idx: x[idx])

  return jax.tree.map(one, tree, shardings)
