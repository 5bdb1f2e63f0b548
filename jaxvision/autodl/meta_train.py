"""Offline meta-training: the meta-learner's pretrained nets, from data that ship with the install.

The winners' meta-learner (autodl.md §7) carries offline knowledge: nets pretrained on
public data (ImageNet, Kinetics, VoxCeleb) that every task starts from. Those weights are
not reachable offline, so this module pretrains the solution's image and video nets on
source tasks built from what the install ships, with classes disjoint from the demo's:

  glyphs         image  the 52 Latin letters A-Z, a-z (no digits) drawn with the TrueType
                        fonts bundled with matplotlib (DejaVu Sans/Serif/Mono, STIX General,
                        Computer Modern: 22 faces), random size, stroke width, rotation
                        (+-15 deg), shear (+-0.3), scale (70-100 % of the frame) and offset,
                        on a 32x32 canvas, then area-averaged to 8x8 or 16x16 or kept at 32x32
                        (one third each), K = 52.
  moving_glyphs  video  the same letters at 8x8 pasted into 16x16 frames and moved in a
                        straight line across 8 frames (random start and end), K = 52.

Nets and their widths come from the solution options (`meta_learner.options`), so the
weights fit the nets the solution builds: ResNet-18 (image.width_multiplier) trained at
32x32, the MC3-style VideoNet (video.width_multiplier, video.blocks) on 8x16x16 clips.
They are written in torchvision layout as `.npz` (no torch needed), with `meta_train.json`
(sources, steps, held-out accuracy, widths, seconds):

  python -m jaxvision.autodl.meta_train --out=/tmp/autodl_meta       # a few minutes, 2 CPU cores
  python -m jaxvision.autodl.run ... --solution_config='{"image": {"pretrained":
      "/tmp/autodl_meta/image_resnet18.npz"}, "video": {"pretrained": ".../video_mc3.npz"}}'

The demo (`configs/autodl.py:demo`, `config.meta_train=True`) runs this once per workdir
before any run (offline: not charged to a budget, as the winners' pretraining was not) and
passes the files as solution.image.pretrained / video.pretrained; ablation (a)
`random_init` ignores them. Speech (ThinResNet-34) and text (TextCNN) stay random init.
"""
from __future__ import annotations

import functools
import json
import os
import string
import time

import numpy as np

VERSION = 1
LETTERS = string.ascii_uppercase + string.ascii_lowercase
IMAGE_FILE, VIDEO_FILE, META_FILE = "image_resnet18.npz", "video_mc3.npz", "meta_train.json"
# Latin text faces among matplotlib's bundled fonts (symbol / display / fallback faces left out)
_FONT_PREFIXES = ("DejaVuSans", "DejaVuSerif", "STIXGeneral", "cmr10", "cmb10", "cmss10",
                  "cmti10", "cmtt10", "cmmi10")


def fonts() -> list[str]:
  """Paths of the text fonts bundled with matplotlib (module doc)."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  d = os.path.join(matplotlib.get_data_path(), "fonts", "ttf")
  out = sorted(os.path.join(d, f) for f in os.listdir(d)
               if f.endswith(".ttf") and f.startswith(_FONT_PREFIXES) and "Display" not in f)
  if not out:
    raise RuntimeError(f"no bundled matplotlib fonts found in {d}; reinstall matplotlib")
  return out


@functools.lru_cache(maxsize=512)
def _font(path: str, size: int):
  from PIL import ImageFont  # pylint: disable=g-import-not-at-top
  return ImageFont.truetype(path, size)


def render_glyph(ch: str, font_path: str, rng: np.random.Generator, out: int = 32) -> np.ndarray:
  """One letter as a [out, out] float32 image in [0, 1] (ink = 1), randomly drawn (module doc)."""
  from PIL import Image, ImageDraw  # pylint: disable=g-import-not-at-top
  canvas = Image.new("L", (128, 128), 0)
  ImageDraw.Draw(canvas).text((64, 64), ch, fill=255, anchor="mm",
                              font=_font(font_path, int(rng.integers(40, 57))),
                              stroke_width=int(rng.integers(0, 3)), stroke_fill=255)
  sh = float(rng.uniform(-0.3, 0.3))
  canvas = canvas.transform(canvas.size, Image.AFFINE, (1, sh, -sh * 64, 0, 1, 0),
                            resample=Image.BICUBIC)
  canvas = canvas.rotate(float(rng.uniform(-15, 15)), resample=Image.BICUBIC)
  box = canvas.getbbox()
  if box is None:  # a face without the glyph: blank, caught by the caller
    return np.zeros((out, out), np.float32)
  g = canvas.crop(box)
  side = max(1, int(round(out * rng.uniform(0.7, 1.0))))
  sc = side / max(g.size)
  g = g.resize((max(1, round(g.size[0] * sc)), max(1, round(g.size[1] * sc))), Image.BICUBIC)
  frame = Image.new("L", (out, out), 0)
  frame.paste(g, (int(rng.integers(0, out - g.size[0] + 1)),
                  int(rng.integers(0, out - g.size[1] + 1))))
  return np.asarray(frame, np.float32) / 255.0


def _area(img: np.ndarray, res: int) -> np.ndarray:
  f = img.shape[0] // res
  return img.reshape(res, f, res, f).mean(axis=(1, 3))


def _letters(n: int, rng: np.random.Generator, make) -> tuple[list[np.ndarray], np.ndarray]:
  """n examples make(glyph [32, 32]) of random letters in random faces; labels [n]."""
  faces = fonts()
  xs, ys = [], []
  while len(xs) < n:
    k = int(rng.integers(len(LETTERS)))
    img = render_glyph(LETTERS[k], faces[int(rng.integers(len(faces)))], rng)
    if img.max() > 0:  # a face without the glyph draws nothing
      xs.append(make(img))
      ys.append(k)
  return xs, np.asarray(ys)


def glyphs(n: int, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
  """The image source task: n letters as [r, r, 1] images, r in {8, 16, 32}; labels [n]."""
  rng = np.random.default_rng(seed)
  return _letters(n, rng, lambda g: np.round(
      _area(g, (8, 16, 32)[int(rng.integers(3))]) * 255)[..., None] / 255.0)


def moving_glyphs(n: int, seed: int = 0, frames: int = 8, size: int = 16):
  """The video source task: n clips [frames, size, size, 1] of an 8x8 letter moving in a
  straight line (demo_data.slide, as moving_digits moves digits); labels [n]."""
  from jaxvision.autodl.demo_data import slide  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(seed)
  return _letters(n, rng, lambda g: slide(_area(g, 8), rng, frames, size))


def _train(model, x: np.ndarray, y: np.ndarray, d: dict, steps: int, seed: int, log, tag: str):
  """Trains `model` on (x, y int) with the solution's NetTrainer; returns (trainer, held-out
  accuracy on the last 10 %)."""
  from jaxvision.autodl.solution.nets import NetTrainer  # pylint: disable=g-import-not-at-top
  n_val = max(1, len(x) // 10)
  onehot = np.eye(len(LETTERS), dtype=np.float32)[y]
  tr = NetTrainer(model, multilabel=False, lr=d["lr"], momentum=d["momentum"],
                  weight_decay=d["weight_decay"], tau=1.0,
                  steps_per_epoch=max(1, (len(x) - n_val) // (2 * d["batch_size"])),
                  batch_size=2 * d["batch_size"], seed=seed)
  chunk = max(1, steps // 10)
  t = time.time()
  while tr.steps < steps:
    tr.fit(x[n_val:], onehot[n_val:], max_steps=min(chunk, steps - tr.steps))
    log(f"meta_train {tag}: step {tr.steps}/{steps} loss {tr.last_loss:.3f} "
        f"({time.time() - t:.0f}s)")
  acc = float((tr.predict(x[:n_val]).argmax(-1) == y[:n_val]).mean())
  return tr, acc


def _export(tr, path: str):
  from flax import nnx  # pylint: disable=g-import-not-at-top
  from jaxvision.models import torch_import  # pylint: disable=g-import-not-at-top
  model = nnx.merge(tr.gdef, tr.params, tr.rest, copy=True)
  tmp = path + ".tmp.npz"
  np.savez(tmp, **torch_import.export_state_dict(model))
  os.replace(tmp, path)  # atomic: a killed run leaves no half-written weights


def _record(opts: dict, image_steps: int, video_steps: int, seed: int) -> dict:
  im, vi = opts["image"], opts["video"]
  return {"version": VERSION, "seed": seed, "image_steps": image_steps,
          "video_steps": video_steps, "image_width_multiplier": im["width_multiplier"],
          "video_width_multiplier": vi["width_multiplier"], "video_blocks": list(vi["blocks"])}


def meta_train(out: str, opts: dict | None = None, *, image_steps: int = 3000,
               video_steps: int = 1000, n_image: int = 6000, n_video: int = 3000,
               seed: int = 0, log=print) -> dict:
  """Pretrains the image and video nets on the source tasks (module doc) and writes
  out/{image_resnet18.npz, video_mc3.npz, meta_train.json}; returns the json record.
  Reuses the files when meta_train.json records the same options, steps and seed."""
  from flax import nnx  # pylint: disable=g-import-not-at-top
  from jaxvision import models  # pylint: disable=g-import-not-at-top
  from jaxvision.autodl.solution import learners, meta_learner  # pylint: disable=g-import-not-at-top
  from jaxvision.autodl.solution.nets import VideoNet  # pylint: disable=g-import-not-at-top
  opts = meta_learner.options(opts and {k: v for k, v in opts.items()
                                        if k in ("image", "video")})
  want = _record(opts, image_steps, video_steps, seed)
  meta_path = os.path.join(out, META_FILE)
  if os.path.exists(meta_path):
    with open(meta_path) as fh:
      have = json.load(fh)
    if ({k: have.get(k) for k in want} == want
        and all(os.path.exists(os.path.join(out, f)) for f in (IMAGE_FILE, VIDEO_FILE))):
      log(f"meta_train: reusing {out}")
      return have
  os.makedirs(out, exist_ok=True)
  rec = dict(want, sources={
      "image": f"glyphs: {n_image} renderings of the 52 letters A-Z a-z in "
               f"{len(fonts())} matplotlib fonts at 8/16/32 px (no digits)",
      "video": f"moving_glyphs: {n_video} clips of an 8x8 letter moving across 8 16x16 frames"})
  im, vi = opts["image"], opts["video"]
  t = time.time()
  xs, y = glyphs(n_image, seed)
  x = np.stack([learners.normalize_image(learners.resize_image(a, (32, 32))) for a in xs])
  log(f"meta_train image: rendered {len(x)} glyphs in {time.time() - t:.1f}s")
  net = models.build("resnet18", len(LETTERS), rngs=nnx.Rngs(seed),
                     width_multiplier=im["width_multiplier"])
  tr, acc = _train(net, x, y, im, image_steps, seed, log, "image")
  _export(tr, os.path.join(out, IMAGE_FILE))
  rec["image"] = {"file": IMAGE_FILE, "net": "resnet18", "input": [32, 32, 3],
                  "heldout_accuracy": acc, "seconds": time.time() - t}
  t = time.time()
  xs, y = moving_glyphs(n_video, seed + 1)
  x = learners.normalize_video(np.stack(xs))
  net = VideoNet(len(LETTERS), rngs=nnx.Rngs(seed), width_multiplier=vi["width_multiplier"],
                 blocks=tuple(vi["blocks"]), fc_bias=True)
  tr, acc = _train(net, x, y, vi, video_steps, seed, log, "video")
  _export(tr, os.path.join(out, VIDEO_FILE))
  rec["video"] = {"file": VIDEO_FILE, "net": "mc3", "input": list(x.shape[1:]),
                  "heldout_accuracy": acc, "seconds": time.time() - t}
  tmp = meta_path + ".tmp"
  with open(tmp, "w") as fh:
    json.dump(rec, fh, indent=1)
  os.replace(tmp, meta_path)
  log(f"meta_train: image held-out accuracy {rec['image']['heldout_accuracy']:.3f}, video "
      f"{rec['video']['heldout_accuracy']:.3f}; wrote {out}")
  return rec


def solution_paths(out: str) -> dict:
  """The solution overrides that load what `meta_train(out)` wrote."""
  return {"image": {"pretrained": os.path.join(out, IMAGE_FILE)},
          "video": {"pretrained": os.path.join(out, VIDEO_FILE)}}


def main(argv):
  del argv
  from absl import flags  # pylint: disable=g-import-not-at-top
  f = flags.FLAGS
  meta_train(f.out, image_steps=f.image_steps, video_steps=f.video_steps, seed=f.seed)


if __name__ == "__main__":
  from absl import app, flags  # pylint: disable=g-import-not-at-top
  flags.DEFINE_string("out", "/tmp/autodl_meta", "output folder")
  flags.DEFINE_integer("image_steps", 3000, "ResNet-18 steps on glyphs")
  flags.DEFINE_integer("video_steps", 1000, "video-net steps on moving glyphs")
  flags.DEFINE_integer("seed", 0, "seed of the source data and init")
  app.run(main)
