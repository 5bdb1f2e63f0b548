"""Full-resolution LFPNet alpha prediction CLI (tiles + tent blending + TTA, spec §2.7).

    python -m jaxvision.methods.lfpnet.predict --image img.png --trimap tri.png --out alpha.png \
        --torch-checkpoint model.pth            # the released QLYoo/LFPNet weights
    python -m jaxvision.methods.lfpnet.predict --image DIR --trimap DIR --out DIR --params p.npz
    python -m jaxvision.methods.lfpnet.predict --alphamatting ~/alphamatting --out DIR --params p.npz

--alphamatting takes the unzipped alphamatting.com test downloads (input_lowres/ and
trimap_lowres/<set>/, every trimap set found) and writes DIR/<set>/<name>.png for the upload.

Folders are matched by file name. The trimap must be grayscale 0 / 128 / 255 (other values are
refused unless --trimap-nearest maps them to the nearest of the three), the same size as the
image, and have unknown pixels. Output: uint8 alpha PNG, truncated as the official eval.py.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from jaxvision.methods.lfpnet.encoding import check_trimap

IMAGE_EXT = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


class InputError(ValueError):
  """Bad user input (one clear line)."""


def load_pair(image_path: str, trimap_path: str, *, nearest: bool = False):
  """Reads (image [H, W, 3] uint8 RGB, trimap [H, W] uint8) and validates them."""
  from PIL import Image  # pylint: disable=import-outside-toplevel
  image = np.asarray(Image.open(image_path).convert("RGB"))
  tri = np.asarray(Image.open(trimap_path).convert("L"))
  return image, validate_trimap(image, tri, nearest=nearest, name=trimap_path)


def validate_trimap(image: np.ndarray, trimap: np.ndarray, *, nearest: bool = False,
                    name: str = "trimap") -> np.ndarray:
  """Size match, values in {0, 128, 255} (or --trimap-nearest), at least one unknown pixel."""
  if image.shape[:2] != trimap.shape[:2]:
    raise InputError(f"{name}: trimap size {trimap.shape[1]}x{trimap.shape[0]} differs from the "
                     f"image size {image.shape[1]}x{image.shape[0]} (W x H); use the trimap made "
                     "for this image.")
  try:
    trimap = check_trimap(trimap, nearest=nearest, flag="--trimap-nearest")
  except ValueError as e:
    raise InputError(f"{name}: {e}") from None
  if not (trimap == 128).any():
    raise InputError(f"{name}: trimap has no unknown (128) pixels, so there is nothing to "
                     "predict (its alpha is the trimap itself); mark the uncertain band with 128.")
  return trimap


def save_params(model, path: str) -> None:
  """Saves an LFPNet's parameters and structure to an .npz (read by `load_params`)."""
  from flax import nnx  # pylint: disable=import-outside-toplevel
  flat = {"/".join(map(str, k)): np.asarray(v.get_value())
          for k, v in nnx.to_flat_state(nnx.state(model, nnx.Param))}
  np.savez(path, __widths__=np.asarray(model.widths), __blocks__=np.asarray(model.blocks),
           __shared__=np.asarray(model.share_backbone), **flat)


def load_params(path: str):
  """Builds the LFPNet saved by `save_params` and loads its parameters."""
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from flax import nnx  # pylint: disable=import-outside-toplevel
  from jaxvision.models.lfpnet import LFPNet  # pylint: disable=import-outside-toplevel
  z = np.load(path)
  model = LFPNet(rngs=nnx.Rngs(0), widths=[int(v) for v in z["__widths__"]],
                 blocks=tuple(int(v) for v in z["__blocks__"]),
                 share_backbone=bool(z["__shared__"]))
  for k, v in nnx.to_flat_state(nnx.state(model, nnx.Param)):
    key = "/".join(map(str, k))
    if key not in z:
      raise InputError(f"{path}: parameter {key} is missing; was it written by save_params?")
    v.set_value(jnp.asarray(z[key]))
  return model


def build_model(args):
  from flax import nnx  # pylint: disable=import-outside-toplevel
  from jaxvision.models.lfpnet import LFPNet  # pylint: disable=import-outside-toplevel
  if args.params:
    return load_params(args.params)
  if args.torch_checkpoint:
    from jaxvision.methods.lfpnet.torch_import import (  # pylint: disable=import-outside-toplevel
        load_official_checkpoint)
    model = LFPNet(rngs=nnx.Rngs(0), context_head=False, dtype=args.dtype)
    return load_official_checkpoint(model, args.torch_checkpoint)
  raise InputError("no weights: pass --torch-checkpoint model.pth (released weights) or "
                   "--params file.npz (a trained jaxvision LFPNet); random weights would give a "
                   "meaningless alpha.")


def _jobs(image: str, trimap: str, out: str) -> list[tuple[str, str, str]]:
  if os.path.isdir(image):
    if not os.path.isdir(trimap):
      raise InputError(f"--image {image} is a folder, so --trimap must be a folder too.")
    names = sorted(f for f in os.listdir(image) if f.lower().endswith(IMAGE_EXT))
    missing = [n for n in names if not os.path.exists(os.path.join(trimap, n))]
    if missing:
      raise InputError(f"no trimap in {trimap} for {len(missing)} image(s), e.g. {missing[0]}.")
    os.makedirs(out, exist_ok=True)
    return [(os.path.join(image, n), os.path.join(trimap, n),
             os.path.join(out, os.path.splitext(n)[0] + ".png")) for n in names]
  for p in (image, trimap):
    if not os.path.exists(p):
      raise InputError(f"file not found: {p}")
  if os.path.isdir(out):
    out = os.path.join(out, os.path.splitext(os.path.basename(image))[0] + ".png")
  return [(image, trimap, out)]


def _alphamatting_jobs(root: str, out: str) -> list[tuple[str, str, str]]:
  from jaxvision.data.base import DataNotReadyError  # pylint: disable=import-outside-toplevel
  from jaxvision.methods.lfpnet.data import alphamatting_sets  # pylint: disable=import-outside-toplevel
  try:
    sets = alphamatting_sets(root, "test")
  except DataNotReadyError as e:
    raise InputError(str(e)) from None
  return [(i, t, os.path.join(out, s, os.path.splitext(os.path.basename(i))[0] + ".png"))
          for s, pairs in sets.items() for i, t in pairs]


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(description="LFPNet alpha matting at full resolution.")
  ap.add_argument("--image", default="", help="RGB image or folder")
  ap.add_argument("--trimap", default="", help="trimap (0/128/255) or folder, same names")
  ap.add_argument("--alphamatting", default="",
                  help="alphamatting.com test downloads (input_lowres/, trimap_lowres/<set>/) "
                       "instead of --image/--trimap; writes OUT/<set>/<name>.png")
  ap.add_argument("--out", required=True, help="output alpha PNG or folder")
  ap.add_argument("--torch-checkpoint", default="", help="released PyTorch model.pth")
  ap.add_argument("--params", default="", help=".npz written by save_params")
  ap.add_argument("--tile", type=int, default=1024, help="inner tile side (multiple of 32)")
  ap.add_argument("--tta", choices=["none", "official", "8"], default="8",
                  help="8 = eval(TTA).py, official = eval.py's single flip+rotation")
  ap.add_argument("--batch-size", type=int, default=1, help="tiles per model call")
  ap.add_argument("--trimap-nearest", action="store_true",
                  help="map trimap values other than 0/128/255 to the nearest of the three")
  ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
  args = ap.parse_args(argv)
  try:
    if bool(args.alphamatting) == bool(args.image or args.trimap):
      raise InputError("pass either --image and --trimap, or --alphamatting DIR.")
    if args.alphamatting:
      jobs = _alphamatting_jobs(args.alphamatting, args.out)
    elif not (args.image and args.trimap):
      raise InputError("--image and --trimap go together.")
    else:
      jobs = _jobs(args.image, args.trimap, args.out)
    pairs = [(load_pair(i, t, nearest=args.trimap_nearest), o) for i, t, o in jobs]
    if args.tile % 32:
      raise InputError(f"--tile must be a multiple of 32, got {args.tile}.")
    model = build_model(args)
  except (InputError, FileNotFoundError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  from PIL import Image  # pylint: disable=import-outside-toplevel
  from jaxvision.methods.lfpnet.inference import (  # pylint: disable=import-outside-toplevel
      model_apply_fn, predict_alpha)
  apply_fn = model_apply_fn(model)
  for (image, tri), out in pairs:
    alpha = predict_alpha(apply_fn, image, tri, tile=args.tile, tta=args.tta,
                          batch_size=args.batch_size)
    d = os.path.dirname(out)
    if d:
      os.makedirs(d, exist_ok=True)
    Image.fromarray(alpha).save(out)
    print(f"wrote {out}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
