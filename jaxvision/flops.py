"""FLOPs / params counting by tracing the real module (also a CLI).

    python -m jaxvision.flops --model=resnet56 [--widths=16,16,...] [--num-classes=10] [--json]

`count(model_or_name, ...)` runs one `jax.eval_shape` forward (no compute, no memory) in eval
mode with `nnx.Conv`, `nnx.Linear` and `nnx.BatchNorm` calls intercepted, so any width list or
pruned structure is counted from what the model actually executes. Conventions:

- 'thop' (default; what the pruning papers report, CLR-RNF §5): conv MACs plus one op per
  output element for a conv bias; linear MACs (bias not counted); 2 ops per BN output element.
  Pooling, activations and residual adds count 0 (thop counts avg-pool outputs; that is
  < 0.01% of these models).
- 'macs': plain multiply-accumulates of conv and linear layers only (a conv-transpose counts
  its true MACs, in_elems x k^2 x cout/groups).
- 'thop_conv': the legacy-thop count that GAN-compression papers report as "MACs" (GCC §2.2):
  conv and conv-transpose both count out_elems x (cin/groups x k^2 + 1 if bias) (so a stride-2
  conv-transpose costs 4x its true MACs), linear MACs, norms 0.

`nnx.ConvTranspose` counts as 'conv_transpose' the same way as a conv under 'thop' (output-based).

Params are all `nnx.Param` leaves (conv/linear weights and biases, BN scale and bias; BN running
statistics are not params). Counts are per input of `input_shape` (batch 1 by default).
Each layer entry's `name` is the module's parameter path ('layer1/0/conv1'; its kernel is
'<name>/kernel' in `nnx.state`), so per-layer FLOPs can be scaled by a per-layer density.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
from typing import Any, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

CONVENTIONS = ("thop", "macs", "thop_conv")
_TYPES = (nnx.Conv, nnx.Linear, nnx.BatchNorm, nnx.ConvTranspose)
_KIND = {nnx.ConvTranspose: "conv_transpose"}


@contextlib.contextmanager
def _intercept(records: list):
  """Temporarily wraps Conv/Linear/BatchNorm.__call__ to record (module, kind, in, out)."""
  originals = {cls: cls.__dict__["__call__"] for cls in _TYPES}

  def wrap(cls, fn):
    def wrapped(self, x, *args, **kwargs):
      y = fn(self, x, *args, **kwargs)
      records.append((self, _KIND.get(cls, cls.__name__.lower()), tuple(x.shape), tuple(y.shape)))
      return y
    return wrapped

  try:
    for cls, fn in originals.items():
      setattr(cls, "__call__", wrap(cls, fn))
    yield records
  finally:
    for cls, fn in originals.items():
      setattr(cls, "__call__", fn)


def _shape(var) -> tuple[int, ...] | None:
  """Shape of an nnx.Variable's value (None for an absent bias)."""
  if not isinstance(var, nnx.Variable):
    return None
  val = var.get_value() if hasattr(var, "get_value") else var.value
  return None if val is None else tuple(val.shape)


def _nparams(module: nnx.Module) -> int:
  total = 0
  for name in ("kernel", "bias", "scale"):
    v = getattr(module, name, None)
    if isinstance(v, nnx.Param) and _shape(v) is not None:
      total += math.prod(_shape(v))
  return total


def _layer_cost(module, kind: str, in_shape, out_shape, convention: str) -> tuple[int, int]:
  """Returns (flops in the convention, plain macs) for one call."""
  out_numel = math.prod(out_shape)
  if kind == "conv":
    kh_kw_cin = math.prod(_shape(module.kernel)[:-1])  # HWIO: kh * kw * cin/groups
    macs = out_numel * kh_kw_cin
    bias = out_numel if _shape(getattr(module, "bias", None)) is not None else 0
    return (macs if convention == "macs" else macs + bias), macs
  if kind == "conv_transpose":
    kh_kw = math.prod(module.kernel_size)
    g = getattr(module, "feature_group_count", 1) or 1
    bias = out_numel if _shape(getattr(module, "bias", None)) is not None else 0
    out_based = out_numel * kh_kw * (module.in_features // g)
    true_macs = math.prod(in_shape) * kh_kw * (module.out_features // g)
    return (true_macs if convention == "macs" else out_based + bias), true_macs
  if kind == "linear":
    macs = out_numel * _shape(module.kernel)[0]
    return macs, macs
  # batchnorm
  return (2 * out_numel if convention == "thop" else 0), 0


def _default_num_classes(builder) -> int:
  return 1000 if builder.input_shape[0] >= 128 else 10


def _resolve_model(model_or_name, widths, build_kw):
  """Name -> abstract (eval_shape) model; a module passes through."""
  if isinstance(model_or_name, nnx.Module):
    if widths is not None or build_kw:
      raise ValueError("widths / build kwargs only apply when count() is given a model name; "
                       "the model instance already has its structure.")
    return model_or_name, getattr(model_or_name, "default_input_shape", None)
  if not isinstance(model_or_name, str):
    raise TypeError(f"count() takes an nnx.Module or a registered model name, "
                    f"got {type(model_or_name).__name__}.")
  from jaxvision.core.registry import MODELS
  import jaxvision.models as models
  builder = MODELS.get(model_or_name)
  kw = dict(build_kw)
  num_classes = kw.pop("num_classes", None)
  if num_classes is None:
    num_classes = _default_num_classes(builder)
  elif int(num_classes) < 1:
    raise ValueError(f"num_classes={num_classes} must be >= 1 (omit it for the model's default)")
  model = nnx.eval_shape(lambda: models.build(model_or_name, num_classes, rngs=nnx.Rngs(0),
                                              widths=widths, **kw))
  return model, builder.input_shape


def count(model_or_name: nnx.Module | str, input_shape: Sequence[int] | None = None,
          convention: str = "thop", widths: Any = None, **build_kw: Any) -> dict:
  """Counts FLOPs and params of a model by tracing one forward pass.

  Args:
    model_or_name: an nnx model called as `model(x, train)`, or a registered model name
      (built abstractly with `widths` and `build_kw`, e.g. num_classes=, shortcut=).
    input_shape: (H, W, C) for one image, or (B, H, W, C); default: the model's
      `default_input_shape` (32x32x3 CIFAR, 224x224x3 ImageNet).
    convention: 'thop' (papers' convention) or 'macs'.

  Returns:
    dict(flops, params, macs, convention, input_shape, layers=[{name, kind, flops, macs, params,
    in_shape, out_shape}, ...]) with layers in execution order (a module called twice appears
    twice; its params are counted once in the total).
  """
  if convention not in CONVENTIONS:
    raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}.")
  model, default_shape = _resolve_model(model_or_name, widths, build_kw)
  if input_shape is None:
    if default_shape is None:
      raise ValueError("input_shape is required for a model without `default_input_shape`; "
                       "pass e.g. input_shape=(32, 32, 3).")
    input_shape = default_shape
  input_shape = tuple(int(s) for s in input_shape)
  if len(input_shape) == 3:
    input_shape = (1,) + input_shape
  if len(input_shape) != 4:
    raise ValueError(f"input_shape must be (H, W, C) or (B, H, W, C), got {input_shape}.")
  if min(input_shape) < 1:
    raise ValueError(f"input_shape {input_shape} has a dimension < 1; every dimension must be "
                     f">= 1, e.g. 32,32,3")

  graphdef, state = nnx.split(model)
  records: list = []
  layers: list[dict] = []

  def forward(state, x):
    m = nnx.merge(graphdef, state)
    paths = {id(node): "/".join(str(p) for p in path)
             for path, node in nnx.iter_graph(m) if isinstance(node, _TYPES)}
    start = len(records)
    out = m(x, train=False)
    for mod, kind, ins, outs in records[start:]:
      fl, macs = _layer_cost(mod, kind, ins, outs, convention)
      layers.append(dict(name=paths.get(id(mod), f"<unnamed {kind}>"), kind=kind, flops=int(fl),
                         macs=int(macs), params=_nparams(mod), in_shape=ins, out_shape=outs))
    return out

  x = jax.ShapeDtypeStruct(input_shape, jnp.float32)
  with _intercept(records):
    jax.eval_shape(forward, state, x)

  params = sum(math.prod(v.shape) for v in jax.tree.leaves(nnx.state(model, nnx.Param)))
  return dict(flops=sum(l["flops"] for l in layers), macs=sum(l["macs"] for l in layers),
              params=int(params), convention=convention, input_shape=input_shape, layers=layers)


def format_table(result: dict) -> str:
  """Per-layer table plus totals (M = 1e6)."""
  rows = [("layer", "kind", "out_shape", "params", "flops")]
  for l in result["layers"]:
    rows.append((l["name"], l["kind"], "x".join(map(str, l["out_shape"][1:])), f"{l['params']:,}",
                 f"{l['flops']:,}"))
  w = [max(len(r[i]) for r in rows) for i in range(5)]
  lines = ["  ".join(c.ljust(w[i]) if i < 3 else c.rjust(w[i]) for i, c in enumerate(r))
           for r in rows]
  lines.insert(1, "-" * len(lines[0]))
  lines.append("-" * len(lines[0]))
  lines.append(f"total ({result['convention']}): {result['flops'] / 1e6:.2f}M FLOPs, "
               f"{result['params'] / 1e6:.2f}M params, {result['macs'] / 1e6:.2f}M MACs, "
               f"input {result['input_shape']}")
  return "\n".join(lines)


def _parse_widths(text: str | None):
  if text is None:
    return None
  text = text.strip()
  if text.startswith("["):
    return json.loads(text)
  return [int(t) for t in text.split(",") if t.strip()]


def _parse_kv(items: Sequence[str]) -> dict:
  out = {}
  for it in items:
    if "=" not in it:
      raise SystemExit(f"--kw expects key=value, got {it!r}")
    k, v = it.split("=", 1)
    try:
      out[k] = json.loads(v)
    except json.JSONDecodeError:
      out[k] = v
  return out


def main(argv: Sequence[str] | None = None) -> int:
  p = argparse.ArgumentParser(prog="python -m jaxvision.flops", description=__doc__.split("\n")[0])
  p.add_argument("--model", required=True, help="registered model name")
  p.add_argument("--widths", default=None, help="comma list of ints or a JSON list")
  p.add_argument("--num-classes", type=int, default=None)
  p.add_argument("--input-shape", default=None, help="H,W,C")
  p.add_argument("--convention", default="thop", choices=CONVENTIONS)
  p.add_argument("--kw", action="append", default=[], help="extra build kwarg key=value")
  p.add_argument("--json", action="store_true", help="print one JSON object")
  a = p.parse_args(argv)
  try:
    kw = _parse_kv(a.kw)
    if a.num_classes is not None:
      kw["num_classes"] = a.num_classes
    shape = [int(s) for s in a.input_shape.split(",")] if a.input_shape else None
    res = count(a.model, input_shape=shape, convention=a.convention,
                widths=_parse_widths(a.widths), **kw)
  except (ValueError, KeyError, TypeError) as e:  # one line, not a traceback
    print(f"jaxvision.flops: error: {str(e).strip(chr(39))}", file=sys.stderr)
    return 2
  if a.json:
    res = dict(res, model=a.model, layers=[dict(l, in_shape=list(l["in_shape"]),
                                                 out_shape=list(l["out_shape"]))
                                            for l in res["layers"]])
    print(json.dumps(res))
  else:
    print(format_table(res))
  return 0


if __name__ == "__main__":
  sys.exit(main())
