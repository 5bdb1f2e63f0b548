"""Receptive-field coverage of unknown pixels (spec lfpnet.md §5, [RECON] of the ">50 %" claim).

For each unknown pixel x, d(x) = exact Euclidean distance to the nearest known pixel (fg or bg)
at full resolution; the tool reports the fraction of unknown pixels with d(x) > r for each radius r
(a fixed receptive-field radius in pixels).

    python -m jaxvision.methods.lfpnet.coverage --trimaps DIR_OR_PNG [...] --r 16 32 64 128
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Iterable, Sequence

import numpy as np
from scipy import ndimage


def unknown_distance(trimap: np.ndarray) -> np.ndarray:
  """[H, W] trimap -> distances of the unknown (128) pixels to the nearest known pixel, [N].

  Pixels with values other than 0/128/255 count as unknown. A trimap with no known pixel gives
  +inf for every unknown pixel.
  """
  t = np.asarray(trimap)
  known = (t == 0) | (t == 255)
  unk = t == 128
  if not known.any():
    return np.full(int(unk.sum()), np.inf)
  return ndimage.distance_transform_edt(~known)[unk]


def coverage(trimaps: Iterable[np.ndarray], radii: Sequence[float]) -> dict:
  """Fraction of unknown pixels (pooled over all trimaps) with d(x) > r, for each r."""
  ds = [unknown_distance(t) for t in trimaps]
  d = np.concatenate(ds) if ds else np.zeros(0)
  n = int(d.size)
  frac = {str(r): (float((d > r).mean()) if n else float("nan")) for r in radii}
  return {"unknown_pixels": n, "images": len(ds), "fraction_beyond_r": frac,
          "max_distance": float(d.max()) if n else float("nan")}


def _files(paths: Sequence[str]) -> list[str]:
  out = []
  for p in paths:
    if os.path.isdir(p):
      out += sorted(os.path.join(p, f) for f in os.listdir(p)
                    if f.lower().endswith((".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")))
    else:
      out.append(p)
  return out


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--trimaps", nargs="+", required=True, help="trimap PNGs or folders of them")
  ap.add_argument("--r", nargs="+", type=float, default=[16, 32, 64, 128, 256],
                  help="receptive-field radii in pixels")
  ap.add_argument("--json", default="", help="also write the result to this file")
  args = ap.parse_args(argv)
  from PIL import Image  # pylint: disable=import-outside-toplevel
  files = _files(args.trimaps)
  if not files:
    print(f"error: no trimap images found in {args.trimaps}", file=sys.stderr)
    return 2
  res = coverage((np.asarray(Image.open(f).convert("L")) for f in files), args.r)
  print(f"{res['images']} trimaps, {res['unknown_pixels']} unknown pixels")
  for r, f in res["fraction_beyond_r"].items():
    print(f"  r = {float(r):7.1f} px: {100 * f:6.2f} % of unknown pixels farther than r from any "
          "known pixel")
  if args.json:
    with open(args.json, "w") as fh:
      json.dump(res, fh, indent=1)
  return 0


if __name__ == "__main__":
  sys.exit(main())
