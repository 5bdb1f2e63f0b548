"""Speed of the host-side metrics (matting on a 2048x2048 matte, AUC, SSIM).

Usage: python benchmarks/metrics.py [--size 2048] [--repeats 3] [--out metrics_bench.json]
Prints a table (best-of-repeats wall time per metric) and writes JSON.
Target (issue 8): all four matting metrics on 2048² under 2 s on a 2-core CPU.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
from scipy import ndimage


def _time(fn, repeats):
  """(best wall seconds, best CPU seconds of this process, output)."""
  best, best_cpu = float("inf"), float("inf")
  for _ in range(repeats):
    t, c = time.perf_counter(), time.process_time()
    out = fn()
    best = min(best, time.perf_counter() - t)
    best_cpu = min(best_cpu, time.process_time() - c)
  return best, best_cpu, out


def main():
  ap = argparse.ArgumentParser(description=__doc__)
  ap.add_argument("--size", type=int, default=2048)
  ap.add_argument("--repeats", type=int, default=3)
  ap.add_argument("--out", default="metrics_bench.json")
  args = ap.parse_args()

  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from jaxvision.evaluators import autodl, image_quality, matting, ranking  # pylint: disable=g-import-not-at-top

  n = args.size
  rng = np.random.default_rng(0)
  g = ndimage.zoom(rng.random((n // 64, n // 64)), 64, order=1)
  g = np.clip((g - 0.5) * 4 + 0.5, 0, 1)
  p = np.clip(g + rng.normal(0, 0.05, g.shape), 0, 1)
  g, p = np.floor(g * 255) / 255, np.floor(p * 255) / 255
  t = np.where(g <= 0, 0, np.where(g >= 1, 255, 128)).astype(np.uint8)
  t[ndimage.binary_dilation(t == 128, iterations=10)] = 128

  rows = []
  for name in ("sad", "mse", "grad", "conn"):
    fn = getattr(matting, name)
    sec, cpu, val = _time(lambda fn=fn: fn(p, g, t), args.repeats)
    rows.append({"metric": f"matting.{name}", "shape": f"{n}x{n}", "seconds": sec, "cpu_seconds": cpu, "value": val})
  sec, cpu, val = _time(lambda: matting.matting_metrics(p, g, t), args.repeats)
  rows.append({"metric": "matting.all_four", "shape": f"{n}x{n}", "seconds": sec, "cpu_seconds": cpu,
               "value": val["conn"]})

  s = rng.random(1_000_000)
  y = rng.random(1_000_000) < s
  sec, cpu, val = _time(lambda: ranking.roc_auc(s, y), args.repeats)
  rows.append({"metric": "ranking.roc_auc", "shape": "1e6", "seconds": sec, "cpu_seconds": cpu, "value": val})
  sec, cpu, val = _time(lambda: ranking.eer(s, y), args.repeats)
  rows.append({"metric": "ranking.eer", "shape": "1e6", "seconds": sec, "cpu_seconds": cpu, "value": val})
  yy = (rng.random((10_000, 100)) < 0.1).astype(float)
  pp = rng.random((10_000, 100))
  sec, cpu, val = _time(lambda: autodl.nauc(yy, pp), args.repeats)
  rows.append({"metric": "autodl.nauc", "shape": "1e4x100", "seconds": sec, "cpu_seconds": cpu, "value": val})

  img = jnp.asarray(rng.random((16, 256, 256, 3)), jnp.float32)
  f = jax.jit(lambda a, b: image_quality.ssim(a, b, crop_border=4))
  f(img, img[::-1]).block_until_ready()
  sec, cpu, val = _time(lambda: f(img, img[::-1]).block_until_ready(), args.repeats)
  rows.append({"metric": "image_quality.ssim (jit)", "shape": "16x256x256x3", "seconds": sec, "cpu_seconds": cpu,
               "value": float(val.mean())})

  print(f"{'metric':28s} {'input':>14s} {'wall s':>8s} {'cpu s':>8s} {'value':>12s}")
  for r in rows:
    print(f"{r['metric']:28s} {r['shape']:>14s} {r['seconds']:8.3f} {r['cpu_seconds']:8.3f} "
          f"{r['value']:12.5g}")
  print(f"load average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores "
        "(wall times on a shared machine include waiting; cpu s is this process's time)")
  meta = {"cpu_count": os.cpu_count(), "machine": platform.machine(),
          "python": platform.python_version(), "jax": jax.__version__,
          "device": str(jax.devices()[0]), "repeats": args.repeats,
          "loadavg_1min": os.getloadavg()[0]}
  with open(args.out, "w") as fh:
    json.dump({"meta": meta, "rows": rows}, fh, indent=1)
  print(f"wrote {args.out}")


if __name__ == "__main__":
  main()
