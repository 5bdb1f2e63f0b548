"""LaConv aggregation and LaConvNet-S throughput.

  python benchmarks/laconv_block.py --out laconv_block.json          # GPU: 416x416 shapes
  python benchmarks/laconv_block.py --small --out /tmp/lc.json       # CPU: tiny shapes

Table 1: the LaConv aggregation fwd+bwd (what training pays) at the LaConvNet-S stage shapes:
  xla   = jaxvision.kernels.dynamic_conv impl='xla' (k*k shifted slices, O(BHWC) memory)
  pallas= impl='pallas' (Triton on GPU, Mosaic on TPU; interpret mode on CPU, meaningless for speed)
  unfold= the SAN reference identity: unfold x to [B,H,W,k*k,C], multiply by the kernels and
          sum (O(BHWCk^2) memory), plain XLA
  and the ratio unfold / xla (and unfold / pallas).
Table 2: LaConvNet-S (REC head) images/s, forward (eval) and a full training step
(fwd + bwd + Adam), at --size (416 on GPU).
"""
from __future__ import annotations

import argparse
import json
import platform
import time

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from jaxvision import models
from jaxvision.kernels.dynamic_conv import dynamic_conv


def unfold_aggregate(x, kernels, *, kernel_size: int, groups: int):
  """SAN identity: unfold(x).view(B, C/G, G, k^2, HW) * W summed over k^2 (NHWC here)."""
  b, h, w, c = x.shape
  k, p = kernel_size, kernel_size // 2
  xp = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
  cols = jnp.stack([xp[:, dy:dy + h, dx:dx + w, :] for dy in range(k) for dx in range(k)], 3)
  cols = cols.reshape(b, h, w, k * k, c // groups, groups)
  kr = kernels.reshape(b, h, w, groups, k * k).transpose(0, 1, 2, 4, 3)[:, :, :, :, None, :]
  return jnp.sum(cols * kr, axis=3).reshape(b, h, w, c)


def _time(fn, args, iters):
  jax.block_until_ready(fn(*args))
  t0 = time.perf_counter()
  for _ in range(iters):
    out = fn(*args)
  jax.block_until_ready(out)
  return (time.perf_counter() - t0) / iters


def _fwd_bwd(agg):
  def loss(x, w):
    return jnp.sum(agg(x, w).astype(jnp.float32) ** 2)
  return jax.jit(jax.grad(loss, (0, 1)))


def bench_block(small: bool, batch: int, iters: int, dtype):
  # (H, C, G, k) of LaConvNet-S stages at 416 (stage 1 has k = 3 and 5).
  shapes = [(16, 8, 2, 3), (8, 16, 4, 5)] if small else [
      (208, 16, 4, 5), (104, 64, 4, 7), (52, 128, 8, 7), (26, 256, 8, 7), (13, 512, 16, 7)]
  on_device = jax.default_backend() in ("gpu", "tpu")
  impls = ["xla", "unfold"] + (["pallas"] if on_device or small else [])
  rows = []
  key = jax.random.key(0)
  for h, c, g, k in shapes:
    x = jax.random.normal(key, (batch, h, h, c), dtype)
    w = jax.random.normal(key, (batch, h, h, g * k * k), dtype)
    row = {"shape": f"B{batch} {h}x{h}x{c} G{g} k{k}", "dtype": jnp.dtype(dtype).name}
    for impl in impls:
      if impl == "unfold":
        agg = lambda x, w: unfold_aggregate(x, w, kernel_size=k, groups=g)  # noqa: E731
      else:
        agg = lambda x, w, impl=impl: dynamic_conv(  # noqa: E731
            x, w, kernel_size=k, groups=g, impl=impl)
      try:
        row[f"{impl}_ms"] = 1e3 * _time(_fwd_bwd(agg), (x, w), iters)
      except Exception as e:  # noqa: BLE001 - report and continue (e.g. OOM for unfold)
        row[f"{impl}_ms"] = None
        row[f"{impl}_error"] = str(e).splitlines()[0][:120]
    for impl in ("xla", "pallas"):
      if row.get(f"{impl}_ms") and row.get("unfold_ms"):
        row[f"unfold_over_{impl}"] = row["unfold_ms"] / row[f"{impl}_ms"]
    rows.append(row)
  return rows


def bench_model(size: int, batch: int, iters: int, variant: str, dtype: str, impl: str):
  m = models.build(f"laconvnet_{variant}", 1, rngs=nnx.Rngs(0), head="rec", impl=impl,
                   dtype=dtype, **({"text_dim": 32} if variant == "tiny" else {}))
  td = m.text_dim
  g, params, rest = nnx.split(m, nnx.Param, ...)
  x = jax.random.uniform(jax.random.key(0), (batch, size, size, 3))
  text = jax.random.normal(jax.random.key(1), (batch, 15, td))
  mask = jnp.zeros((batch, 15), bool).at[:, 8:].set(True)
  tx = optax.adam(1e-4)
  opt = tx.init(params)

  @jax.jit
  def fwd(params, rest, x, text, mask):
    return nnx.merge(g, params, rest, copy=True)(x, text, mask, train=False)["boxes"]

  @jax.jit
  def step(params, rest, opt, x, text, mask, key):
    def loss(p):
      mm = nnx.merge(g, p, rest, copy=True)
      out = mm(x, text, mask, train=True, rng=key)
      return jnp.mean(out["raw"] ** 2), nnx.state(mm, nnx.Not(nnx.Param))
    (l, r), grads = jax.value_and_grad(loss, has_aux=True)(params)
    upd, opt = tx.update(grads, opt, params)
    return optax.apply_updates(params, upd), r, opt, l

  t_f = _time(fwd, (params, rest, x, text, mask), iters)
  t_s = _time(lambda *a: step(*a)[3], (params, rest, opt, x, text, mask, jax.random.key(2)), iters)
  n = sum(v.size for v in jax.tree.leaves(params))
  return {"model": f"laconvnet_{variant}", "size": size, "batch": batch, "dtype": dtype,
          "impl": impl, "params": int(n), "fwd_img_s": batch / t_f, "train_img_s": batch / t_s}


def main(argv=None):
  ap = argparse.ArgumentParser()
  ap.add_argument("--small", action="store_true", help="tiny CPU shapes")
  ap.add_argument("--batch", type=int, default=8)
  ap.add_argument("--iters", type=int, default=20)
  ap.add_argument("--size", type=int, default=416)
  ap.add_argument("--model_batch", type=int, default=16)
  ap.add_argument("--dtype", default="float32")
  ap.add_argument("--skip_model", action="store_true")
  ap.add_argument("--out", default="")
  a = ap.parse_args(argv)
  dt = jnp.dtype(a.dtype)
  res = {"device": str(jax.devices()[0].device_kind), "backend": jax.default_backend(),
         "host": platform.node(), "jax": jax.__version__}
  res["block"] = bench_block(a.small, 2 if a.small else a.batch, 2 if a.small else a.iters, dt)
  print("| shape | dtype | xla ms | pallas ms | unfold ms | unfold/xla | unfold/pallas |")
  print("|---|---|---|---|---|---|---|")
  f = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
  for r in res["block"]:
    print(f"| {r['shape']} | {r['dtype']} | {f(r.get('xla_ms'))} | {f(r.get('pallas_ms'))} | "
          f"{f(r.get('unfold_ms'))} | {f(r.get('unfold_over_xla'))} | "
          f"{f(r.get('unfold_over_pallas'))} |")
  if not a.skip_model:
    res["model"] = []
    variant, size, b = ("tiny", 64, 2) if a.small else ("s", a.size, a.model_batch)
    impls = ["xla"] + (["pallas"] if jax.default_backend() in ("gpu", "tpu") else [])
    for impl in impls:
      r = bench_model(size, b, 2 if a.small else a.iters, variant, a.dtype, impl)
      res["model"].append(r)
      print(f"{r['model']} {size}x{size} batch {b} {a.dtype} impl={impl}: "
            f"{r['fwd_img_s']:.1f} img/s forward, {r['train_img_s']:.1f} img/s train step "
            f"({r['params'] / 1e6:.2f}M params)")
  if a.out:
    with open(a.out, "w") as fh:
      json.dump(res, fh, indent=1)


if __name__ == "__main__":
  main()
