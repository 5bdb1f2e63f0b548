"""Times jaxvision.kernels: reference (XLA) vs Pallas on the current device.

  python benchmarks/kernels.py --out kernels.json            # GPU/TPU, realistic shapes
  python benchmarks/kernels.py --small --out /tmp/k.json     # CPU, tiny shapes, interpret

Prints a table with time per call, achieved GB/s (bytes that must move: inputs
read + outputs written, once) and the fraction of the copy roofline
(--roofline_gbs, default the H100's measured 2960 GB/s read+write), and writes
JSON. Elementwise ops are timed fwd and fwd+bwd; dynamic_conv fwd+bwd (the
training cost). Numbers on CPU (interpret mode) say nothing about GPU speed.
"""
from __future__ import annotations

import argparse
import json
import platform
import time

import jax
import jax.numpy as jnp

from jaxvision.kernels import dynamic_conv, dynamic_conv_per_example, fake_quant, masked_weight


def _bytes(*arrays):
  return sum(a.size * a.dtype.itemsize for a in arrays)


def _time(fn, args, iters):
  out = fn(*args)
  jax.block_until_ready(out)
  t0 = time.perf_counter()
  for _ in range(iters):
    out = fn(*args)
  jax.block_until_ready(out)
  return (time.perf_counter() - t0) / iters


def _cases(small: bool):
  key = jax.random.key(0)
  cases = []
  # ResNet-50 conv weights (HWIO) and a 16M-element tensor; tiny ones for --small.
  weights = [(3, 3, 8, 16), (7, 7, 3, 8)] if small else [
      (3, 3, 512, 512), (1, 1, 1024, 2048), (7, 7, 3, 64), (4096, 4096)]
  for shape in weights:
    for dtype in (jnp.float32, jnp.bfloat16):
      w = jax.random.normal(key, shape, dtype)
      s = jax.random.normal(key, shape, jnp.float32)
      c = shape[-1]
      scale = jnp.full((c,), 0.02, jnp.float32)
      name = f"fake_quant {shape} {jnp.dtype(dtype).name} 8b per-ch"
      fq = lambda w, scale, impl: fake_quant(w, scale, bits=8, axis=-1, impl=impl)  # noqa: E731
      fq_b = lambda w, scale, impl: jax.grad(  # noqa: E731
          lambda w, sc: jnp.sum(fake_quant(w, sc, bits=8, axis=-1, learn_scale=True, impl=impl)
                                .astype(jnp.float32)), (0, 1))(w, scale)
      cases.append((name + " fwd", fq, (w, scale), _bytes(w, w)))
      cases.append((name + " fwd+bwd", fq_b, (w, scale), _bytes(w, w, w, w)))
      if dtype == jnp.float32:
        mw = lambda w, s, impl: masked_weight(w, s, threshold=0.0, impl=impl)  # noqa: E731
        mw_b = lambda w, s, impl: jax.grad(  # noqa: E731
            lambda w, s: jnp.sum(masked_weight(w, s, threshold=0.0, impl=impl)), (0, 1))(w, s)
        cases.append((f"masked_weight {shape} fwd", mw, (w, s), _bytes(w, s, w)))
        # fwd: w, s -> out; bwd: g, w, s -> dw, ds
        cases.append((f"masked_weight {shape} fwd+bwd", mw_b, (w, s), _bytes(w, s, w) * 2 + w.nbytes * 2))
  # LaConvNet-B feature maps at 416^2 (B, H, W, C, G, k); tiny for --small.
  convs = [(1, 6, 5, 8, 2, 3)] if small else [
      (8, 208, 208, 16, 4, 7), (8, 104, 104, 64, 4, 7), (8, 52, 52, 128, 8, 7),
      (8, 26, 26, 256, 8, 7), (8, 13, 13, 512, 16, 7)]
  for b, h, w_, c, g, k in convs:
    for dtype in (jnp.float32, jnp.bfloat16):
      x = jax.random.normal(key, (b, h, w_, c), dtype)
      kn = jax.random.normal(key, (b, h, w_, g * k * k), dtype)
      ke = jax.random.normal(key, (b, k, k, g), dtype)
      dc_b = lambda x, kn, impl, k=k, g=g: jax.grad(  # noqa: E731
          lambda x, kn: jnp.sum(dynamic_conv(x, kn, kernel_size=k, groups=g, impl=impl)
                                .astype(jnp.float32)), (0, 1))(x, kn)
      de_b = lambda x, ke, impl: jax.grad(  # noqa: E731
          lambda x, ke: jnp.sum(dynamic_conv_per_example(x, ke, impl=impl)
                                .astype(jnp.float32)), (0, 1))(x, ke)
      tag = f"({b},{h},{w_},{c}) G={g} k={k} {jnp.dtype(dtype).name}"
      # fwd reads x, K, writes out; bwd reads g, x, K, writes dx, dK
      cases.append((f"dynamic_conv {tag} fwd+bwd", dc_b, (x, kn), _bytes(x, kn, x) +
                    _bytes(x, x, kn, x, kn)))
      cases.append((f"dyn_conv_per_example {tag} fwd+bwd", de_b, (x, ke), 5 * x.nbytes))
  return cases


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--small", action="store_true", help="tiny shapes (CPU / interpret mode)")
  ap.add_argument("--iters", type=int, default=None)
  ap.add_argument("--roofline_gbs", type=float, default=2960.0)
  ap.add_argument("--out", default="")
  ap.add_argument("--filter", default="", help="only cases whose name contains this")
  a = ap.parse_args(argv)
  iters = a.iters or (2 if a.small else 20)
  rows = []
  print(f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), jax {jax.__version__}")
  hdr = f"{'case':62s} {'impl':7s} {'ms':>9s} {'GB/s':>8s} {'roof':>6s} {'speedup':>7s}"
  print(hdr)
  print("-" * len(hdr))
  for name, fn, args, nbytes in _cases(a.small):
    if a.filter and a.filter not in name:
      continue
    base = None
    for impl in ("xla", "pallas"):
      f = jax.jit(fn, static_argnums=len(args))
      try:
        sec = _time(f, (*args, impl), iters)
        err = None
      except Exception as e:  # a kernel that fails to lower/run is reported, not fatal
        sec, err = float("nan"), f"{type(e).__name__}: {str(e)[:200]}"
      gbs = nbytes / sec / 1e9
      base = sec if impl == "xla" else base
      row = dict(case=name, impl=impl, ms=sec * 1e3, gb_s=gbs, roofline_frac=gbs / a.roofline_gbs,
                 speedup_vs_xla=base / sec, bytes=nbytes, error=err)
      rows.append(row)
      print(f"{name:62s} {impl:7s} {sec * 1e3:9.3f} {gbs:8.1f} {gbs / a.roofline_gbs:6.1%} "
            f"{base / sec:7.2f}" + (f"  {err}" if err else ""))
  result = dict(device=jax.devices()[0].device_kind, backend=jax.default_backend(),
                jax=jax.__version__, python=platform.python_version(), small=a.small,
                iters=iters, roofline_gbs=a.roofline_gbs, rows=rows,
                note="bytes = inputs read + outputs written once; CPU runs Pallas in "
                     "interpret mode")
  if a.out:
    with open(a.out, "w") as f:
      json.dump(result, f, indent=1)
    print(f"wrote {a.out}")
  return result


if __name__ == "__main__":
  main()
