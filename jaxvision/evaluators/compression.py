"""Compression reports: sparsity per layer, FLOPs/params before/after, bits.

Definitions:
  Sparsity (optg.md §2/§5, STR `getSparsity`): per tensor 1 − nnz/numel;
    overall = 1 − Σ nnz / Σ numel over the *included* tensors only. By
    default a tensor is included when it has ndim >= 2 (conv / dense
    kernels); biases and norm parameters are never masked, so they are left
    out. Pass a pytree of 0/1 masks or of (masked) weights: zeros are counted
    the same way.
  Model size (quantization papers, e.g. intraq.md): Σ_layers numel · bits,
    with per-layer bit widths (default 32 for float32); reported in bits and
    MiB (= bits / 8 / 2**20).
  FLOPs/params: counted by `jaxvision.flops.count(model, input_shape,
    convention=...)` (imported lazily; another module); reduction =
    1 − after / before.
Names are the pytree paths joined by '/', with nnx's trailing '/value' removed.
"""
from __future__ import annotations

import re
from typing import Callable, Mapping

import jax
import numpy as np

from jaxvision.core.registry import EVALUATORS
from jaxvision.evaluators.base import to_numpy


def path_name(path) -> str:
  """A pytree key path -> 'a/b/kernel' (nnx '.value' suffix dropped)."""
  name = jax.tree_util.keystr(tuple(path), simple=True, separator="/")
  return name[: -len("/value")] if name.endswith("/value") else name


def named_leaves(tree) -> list[tuple[str, object]]:
  """[(name, array)] for every array leaf of a pytree (nnx.State included)."""
  leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
  return [(path_name(p), x) for p, x in leaves if hasattr(x, "shape")]


def _leaves_or_raise(tree, fn: str) -> list[tuple[str, object]]:
  if tree is None:
    raise ValueError(f"{fn} got None instead of a parameter pytree (nnx.state(model) or a "
                     "dict of arrays)")
  leaves = named_leaves(tree)
  if not leaves:
    raise ValueError(f"{fn} found no arrays in the given {type(tree).__name__}; pass "
                     "nnx.state(model, nnx.Param) or a dict of arrays")
  return leaves


def _default_include(name: str, x) -> bool:
  return len(x.shape) >= 2


def _selector(include):
  if include is None:
    return _default_include
  if isinstance(include, str):
    rx = re.compile(include)
    return lambda name, x: rx.search(name) is not None
  return include


def sparsity_report(tree, include: str | Callable[[str, object], bool] | None = None) -> dict:
  """Sparsity of masks or weights.

  Args:
    tree: pytree of arrays (masks or weights) with path names.
    include: regex on names, or predicate(name, array); default ndim >= 2.
  Returns:
    {'layers': {name: {'numel', 'nnz', 'sparsity'}}, 'numel', 'nnz',
     'sparsity'} (overall over the included tensors; 0 if none).
  """
  sel = _selector(include)
  layers = {}
  for name, x in _leaves_or_raise(tree, "sparsity_report"):
    if not sel(name, x):
      continue
    a = to_numpy(x)
    numel, nnz = int(a.size), int(np.count_nonzero(a))
    layers[name] = {"numel": numel, "nnz": nnz,
                    "sparsity": 1.0 - nnz / numel if numel else 0.0}
  numel = sum(v["numel"] for v in layers.values())
  nnz = sum(v["nnz"] for v in layers.values())
  return {"layers": layers, "numel": numel, "nnz": nnz,
          "sparsity": 1.0 - nnz / numel if numel else 0.0}


def model_size_bits(tree, bits: int | Mapping[str, int] | Callable[[str], int] = 32,
                    default_bits: int = 32, count_zeros: bool = True) -> dict:
  """Model size with per-layer bit widths.

  Args:
    tree: pytree of parameters (every array leaf counts).
    bits: one width for all; or {regex: bits} (first match wins, else
      `default_bits`); or a function name -> bits.
    count_zeros: False counts only nonzero entries (sparse storage, index
      overhead not included).
  Returns:
    {'layers': {name: {'numel', 'bits', 'size_bits'}}, 'total_bits',
     'total_mib', 'numel'}.
  """
  if isinstance(bits, int):
    width = lambda name: bits  # noqa: E731
  elif isinstance(bits, Mapping):
    rules = [(re.compile(k), int(v)) for k, v in bits.items()]
    width = lambda name: next((b for rx, b in rules if rx.search(name)), default_bits)  # noqa: E731
  elif callable(bits):
    width = bits
  else:
    raise TypeError("bits must be an int, a {regex: bits} mapping or a function name -> bits")
  layers = {}
  for name, x in _leaves_or_raise(tree, "model_size_bits"):
    b = int(width(name))
    if b <= 0:
      raise ValueError(f"layer '{name}' got bit width {b}; must be positive")
    n = int(np.prod(x.shape)) if count_zeros else int(np.count_nonzero(to_numpy(x)))
    layers[name] = {"numel": n, "bits": b, "size_bits": n * b}
  total = sum(v["size_bits"] for v in layers.values())
  return {"layers": layers, "total_bits": total, "total_mib": total / 8 / 2 ** 20,
          "numel": sum(v["numel"] for v in layers.values())}


def reduction_report(before: Mapping[str, float], after: Mapping[str, float]) -> dict:
  """{'flops_before', 'flops_after', 'flops_reduction', 'params_*'...} from two
  counter results with keys 'flops' and 'params' (reduction = 1 − after/before)."""
  out = {}
  for k in ("flops", "params"):
    if k not in before or k not in after:
      raise ValueError(f"counter results must contain '{k}'")
    b, a = float(before[k]), float(after[k])
    out[f"{k}_before"], out[f"{k}_after"] = b, a
    out[f"{k}_reduction"] = 1.0 - a / b if b else 0.0
  return out


def flops_report(model_before, model_after, input_shape, convention: str = "thop") -> dict:
  """FLOPs/params before and after compression via `jaxvision.flops.count`.

  input_shape: e.g. (1, 32, 32, 3) NHWC, as `jaxvision.flops.count` expects.
  """
  try:
    from jaxvision import flops  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError("flops_report needs jaxvision.flops (count(model, input_shape, "
                      "convention=...)), which could not be imported") from e
  before = flops.count(model_before, input_shape, convention=convention)
  after = flops.count(model_after, input_shape, convention=convention)
  return reduction_report(before, after)


@EVALUATORS.register("compression")
class CompressionReport:
  """Host-side compression summary of one parameter/mask pytree.

  `__call__(tree, bits=32)` -> {'sparsity', 'nnz', 'numel', 'size_bits',
  'size_mib'} plus per-layer dicts under 'layers_sparsity' / 'layers_bits'.
  """

  def __init__(self, include: str | None = None):
    self.include = include

  def __call__(self, tree, bits=32) -> dict:
    s = sparsity_report(tree, self.include)
    m = model_size_bits(tree, bits)
    return {"sparsity": s["sparsity"], "nnz": s["nnz"], "numel": s["numel"],
            "size_bits": m["total_bits"], "size_mib": m["total_mib"],
            "layers_sparsity": s["layers"], "layers_bits": m["layers"]}
