"""LFPNet full-resolution tiled inference: batched tiles x TTA vs the official batch-1 loop.

    python benchmarks/lfpnet_tiled.py --size 2048 --tile 1024 --model lfpnet_tiny --tta 8
    python benchmarks/lfpnet_tiled.py --size 2048 --model lfpnet --tta official   # full width

Both paths use the same weights, encodings and blending; the official-style loop runs every tile
and every transform as its own batch-1 call (as eval(TTA).py), ours runs `--batch-size` tiles x
all transforms per call and skips tiles without unknown pixels (exact). The maximum difference
between the two alphas is printed: with a random-init tiny net in float32 it is ~1e-3 (batch-1
and batched convolutions round differently and GroupNorm on near-constant 1-channel groups
amplifies it); in float64 the two paths agree to 3e-8. Random image, trimap with an unknown band
covering `--unknown-frac` of the rows. Prints a table and writes JSON (`--json`).
"""
from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxvision import models
from jaxvision.methods.lfpnet import inference as I
from jaxvision.methods.lfpnet.encoding import encode


def official_loop(apply_fn, image, trimap, tile, transforms):
  """eval(TTA).py's order: every tile, every transform, batch 1, no skipping."""
  grid = I.tile_grid(*trimap.shape, tile)
  img_c, tri_c = I.pad_for_tiles(image, trimap, grid)
  s = tile // 2
  acc = np.zeros((grid.ph, grid.pw))
  wsum = np.zeros((grid.ph, grid.pw))
  wt = I.tent_weight(tile)
  for (r, c) in grid.origins():
    x, raw = encode(img_c[r + s:r + s + tile, c + s:c + s + tile],
                    tri_c[r + s:r + s + tile, c + s:c + s + tile])
    xc, _ = encode(img_c[r:r + 2 * tile, c:c + 2 * tile], tri_c[r:r + 2 * tile, c:c + 2 * tile])
    outs = []
    for t in transforms:
      a = I._tta_batch(apply_fn, jnp.asarray(x[None]), jnp.asarray(xc[None]),
                       jnp.asarray(raw[None]), jnp.asarray(x[None, ..., 3:6]), (t,))
      outs.append(np.asarray(a[0]))
    acc[r:r + tile, c:c + tile] += wt * np.mean(outs, 0)
    wsum[r:r + tile, c:c + tile] += wt
  alpha = (acc / wsum)[grid.top:grid.top + grid.h, grid.left:grid.left + grid.w]
  alpha[trimap == 0], alpha[trimap == 255] = 0, 1
  return alpha


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--size", type=int, default=2048)
  ap.add_argument("--tile", type=int, default=1024)
  ap.add_argument("--model", default="lfpnet_tiny")
  ap.add_argument("--tta", default="8", choices=list(I.TTA_MODES))
  ap.add_argument("--batch-size", type=int, default=2, help="tiles per call (ours)")
  ap.add_argument("--unknown-frac", type=float, default=0.3)
  ap.add_argument("--dtype", default="float32")
  ap.add_argument("--json", default="")
  args = ap.parse_args()
  rng = np.random.default_rng(0)
  h = w = args.size
  image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
  trimap = np.zeros((h, w), np.uint8)
  trimap[:, w // 2:] = 255
  band = int(args.unknown_frac * h)
  trimap[:band, w // 2 - 40:w // 2 + 40] = 128
  model = models.build(args.model, 7, rngs=nnx.Rngs(0), dtype=args.dtype, context_head=False)
  apply_fn = I.model_apply_fn(model)
  transforms = I.TTA_MODES[args.tta]
  grid = I.tile_grid(h, w, args.tile)
  rows = []

  def timed(name, fn):
    fn()  # compile + warm-up
    t = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t
    rows.append({"path": name, "seconds": dt})
    return out

  ours = timed("batched (ours, skip known tiles)", lambda: I.predict_alpha_float(
      apply_fn, image, trimap, tile=args.tile, tta=transforms, batch_size=args.batch_size))
  ours_all = timed("batched (ours, all tiles)", lambda: I.predict_alpha_float(
      apply_fn, image, trimap, tile=args.tile, tta=transforms, batch_size=args.batch_size,
      skip_known=False))
  ref = timed("official-style batch-1 loop", lambda: official_loop(apply_fn, image, trimap,
                                                                   args.tile, transforms))
  diff = float(max(np.abs(ours - ref).max(), np.abs(ours_all - ref).max()))
  base = rows[-1]["seconds"]
  print(f"LFPNet tiled inference, {h}x{w}, tile {args.tile}, {grid.n_h * grid.n_w} tiles, "
        f"{len(transforms)} transform(s), model {args.model}, {jax.devices()[0].device_kind}")
  print(f"{'path':38s} {'seconds':>9s} {'speed-up':>9s}")
  for r in rows:
    print(f"{r['path']:38s} {r['seconds']:9.2f} {base / r['seconds']:8.2f}x")
  print(f"max |alpha difference| between paths: {diff:.2e}")
  if args.json:
    with open(args.json, "w") as f:
      json.dump({"args": vars(args), "device": jax.devices()[0].device_kind, "rows": rows,
                 "tiles": grid.n_h * grid.n_w, "max_abs_diff": diff}, f, indent=1)


if __name__ == "__main__":
  main()
