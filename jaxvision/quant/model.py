"""Model surgery: inject quantizers into an existing NNX model, calibrate, export.

    rules = quant.uniform_rules(4)                      # W4A4, IntraQ placement
    paths = quant.quantize_model(model, rules, sample_input=x[:1])
    quant.calibrate(model, batches)                     # or a jitted calibration stage
    int_model = quant.to_integer_model(model)           # exported integers
    int_model(x, train=False)                           # ~= model(x, train=False)

No model code is edited: the graph is walked and every `nnx.Conv` / `nnx.Linear`
matched by a rule is replaced in its parent (attribute, list or dict entry).
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxvision.models.common import path_str
from jaxvision.quant.layers import (ActQuantizer, IntegerLayer, QuantLayer, QuantState,
                                    _hook_name)
from jaxvision.quant.spec import QuantRule, match_rule


def find_modules(model: nnx.Module, types) -> list[tuple[tuple, nnx.Module]]:
  """(path tuple, module) of every submodule of `types` not nested in another match."""
  out = []
  for path, node in nnx.iter_graph(model):
    if isinstance(node, types) and path:
      if not any(path[:len(p)] == p for p, _ in out):
        out.append((tuple(path), node))
  # iter_graph yields children before parents; drop children of matched parents.
  keep = []
  for p, n in out:
    if not any(q != p and p[:len(q)] == q for q, _ in out):
      keep.append((p, n))
  return keep


def _get(model: nnx.Module, path: Sequence[Any]):
  node = model
  for k in path:
    node = node[k] if isinstance(k, int) or not hasattr(node, str(k)) else getattr(node, k)
  return node


def replace_module(model: nnx.Module, path: Sequence[Any], new: nnx.Module) -> None:
  """Sets the submodule at `path` (tuple of attribute names / indices) to `new`."""
  if not path:
    raise ValueError("cannot replace the root module; wrap it instead.")
  parent, key = _get(model, path[:-1]), path[-1]
  if isinstance(key, int) or not hasattr(parent, str(key)):
    parent[key] = new
  else:
    setattr(parent, key, new)


def replace_modules(model: nnx.Module, types, factory: Callable[[str, nnx.Module], Optional[nnx.Module]]
                    ) -> list[str]:
  """Replaces each submodule of `types` by `factory(path_str, module)` (None = keep).

  Returns the '/'-joined paths that were replaced, in graph order.
  """
  done = []
  for path, node in find_modules(model, types):
    new = factory(path_str(path), node)
    if new is not None and new is not node:
      replace_module(model, path, new)
      done.append(path_str(path))
  return done


def call_order(model: nnx.Module, sample_input: jax.Array, types=(nnx.Conv, nnx.Linear),
               **call_kwargs) -> list[str]:
  """Paths of conv/linear layers in the order a forward pass calls them (abstract trace).

  sample_input: [B, H, W, C] array or ShapeDtypeStruct. Calls `model(x, train=False)`.
  """
  order: list[str] = []
  saved = []
  for path, node in find_modules(model, types):
    hook = _hook_name(node)
    base = getattr(node, hook)
    p = path_str(path)

    def rec(*a, _base=base, _p=p, **kw):
      if _p not in order:
        order.append(_p)
      return _base(*a, **kw)

    saved.append((node, hook, base))
    setattr(node, hook, rec)
  try:
    x = jax.ShapeDtypeStruct(sample_input.shape, sample_input.dtype)
    kwargs = {"train": False, **call_kwargs}
    jax.eval_shape(lambda x: model(x, **kwargs), x)
  finally:
    for node, hook, base in saved:
      setattr(node, hook, base)
  return order


def quantize_model(model: nnx.Module, rules: Sequence[QuantRule], *,
                   sample_input: Optional[jax.Array] = None) -> list[str]:
  """Replaces every rule-matched nnx.Conv / nnx.Linear by a `QuantLayer`, in place.

  Args:
    model: an NNX model called as `model(x, train=...)`.
    rules: first match wins; '@first' / '@last' need `sample_input` to find the call order.
    sample_input: [B, H, W, C] (only its shape/dtype is used).
  Returns: the quantized layer paths.
  """
  if find_modules(model, (QuantLayer,)):
    raise ValueError("model already has quantized layers; quantize a fresh copy.")
  if not rules:
    raise ValueError("quantize_model needs at least one QuantRule (see quant.uniform_rules).")
  layers = find_modules(model, (nnx.Conv, nnx.Linear))
  if not layers:
    raise ValueError("model has no nnx.Conv / nnx.Linear layers to quantize.")
  positional = any(r.pattern in ("@first", "@last") for r in rules)
  if positional:
    if sample_input is None:
      raise ValueError("rules use '@first'/'@last': pass sample_input=[1, H, W, C] so the "
                       "call order of the layers can be traced.")
    order = call_order(model, sample_input)
  else:
    order = [path_str(p) for p, _ in layers]

  def factory(p, node):
    idx = order.index(p) if p in order else -1
    rule = match_rule(rules, p, idx, len(order))
    if rule is None or (rule.weight is None and rule.act is None):
      return None
    return QuantLayer(node, rule.weight, rule.act, p)

  return replace_modules(model, (nnx.Conv, nnx.Linear), factory)


def dequantize_model(model: nnx.Module) -> list[str]:
  """Undoes `quantize_model` in place (wrappers replaced by their original layers)."""
  return replace_modules(model, (QuantLayer,), lambda p, q: q.unwrap())


def quant_layers(model: nnx.Module) -> list[tuple[str, QuantLayer]]:
  return [(path_str(p), n) for p, n in find_modules(model, (QuantLayer,))]


def set_calibrating(model: nnx.Module, flag: bool) -> None:
  """Turns range updates of every activation quantizer on or off (a static flag)."""
  for _, node in nnx.iter_graph(model):
    if isinstance(node, ActQuantizer):
      node.calibrating = bool(flag)


def reset_ranges(model: nnx.Module) -> None:
  """Marks every activation range uncalibrated (count 0, range 0)."""
  for _, node in nnx.iter_graph(model):
    if isinstance(node, ActQuantizer):
      node.lo[...] = jnp.zeros_like(node.lo[...])
      node.hi[...] = jnp.zeros_like(node.hi[...])
      node.count[...] = jnp.zeros_like(node.count[...])


def make_calibration_step(graphdef: nnx.GraphDef) -> Callable[[nnx.State, jax.Array], nnx.State]:
  """Pure step: (model state, x [B,H,W,C]) -> state with activation ranges updated.

  The model runs with `train=False` (BN running statistics untouched).
  """

  def step(state, x):
    model = nnx.merge(graphdef, state)
    set_calibrating(model, True)
    model(x, train=False)
    set_calibrating(model, False)
    return nnx.state(model)

  return step


def calibrate(model: nnx.Module, batches: Iterable[jax.Array]) -> int:
  """Updates activation ranges in place from `batches` (each [B, H, W, C]); returns count."""
  graphdef, state = nnx.split(model)
  step = jax.jit(make_calibration_step(graphdef))
  n = 0
  for x in batches:
    state = step(state, jnp.asarray(x))
    n += 1
  nnx.update(model, state)
  return n


def to_integer_model(model: nnx.Module) -> nnx.Module:
  """A copy of `model` whose `QuantLayer`s are replaced by `IntegerLayer`s (exported ints)."""
  clone = nnx.clone(model)
  replace_modules(clone, (QuantLayer,), lambda p, q: IntegerLayer(q))
  return clone


def export_integers(model: nnx.Module) -> dict[str, dict[str, np.ndarray]]:
  """{layer path: {'w_q' int8/int16, 'w_s', 'w_z' [Cout], 'bias', 'a_s', 'a_z', 'bits'}}.

  Weight codes satisfy w ~= (w_q - w_z) / w_s per output channel (last axis).
  """
  out = {}
  for path, node in find_modules(to_integer_model(model), (IntegerLayer,)):
    d = {"w_q": np.asarray(node.w_q[...]), "w_s": np.asarray(node.w_s[...]),
         "w_z": np.asarray(node.w_z[...]), "bits": node.wspec.bits}
    if node.bias is not None:
      d["bias"] = np.asarray(node.bias[...])
    if node.aspec is not None:
      d.update(a_s=np.asarray(node.a_s[...]), a_z=np.asarray(node.a_z[...]),
               act_bits=node.aspec.bits)
    out[path_str(path)] = d
  return out


def model_size_bits(model: nnx.Module) -> dict[str, int]:
  """Storage in bits: `fp32` (every nnx.Param at 32 bits) and `quantized` (quantized kernels at
  their bit width + 32-bit scale and zero point per channel, everything else 32 bits)."""
  total = sum(int(np.prod(v.shape)) for v in jax.tree.leaves(nnx.state(model, nnx.Param)))
  qbits, qcount = 0, 0
  for _, q in quant_layers(model):
    if q.weight_spec is None:
      continue
    k = q.layer.kernel[...]
    n = int(np.prod(k.shape))
    channels = k.shape[-1] if q.weight_spec.per_channel else 1
    qbits += n * q.weight_spec.bits + channels * 64
    qcount += n
  act = sum(int(np.prod(v.shape)) for v in jax.tree.leaves(nnx.state(model, QuantState)))
  return {"fp32": 32 * total, "quantized": 32 * (total - qcount) + qbits,
          "quantized_params": qcount, "params": total, "quantizer_state": act}
