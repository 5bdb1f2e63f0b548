"""Procedural REC / RES / VQA scenes on real photos (the `:demo` data; synthetic scenes on real
backgrounds, not a benchmark).

Each scene: a random square crop of one of scikit-image's bundled photos, with 2-4
non-overlapping flat-coloured shapes (colour x shape x position). Per scene one sample:
  expression  a referring expression that picks out exactly one object, e.g.
              "the red circle", "the green object", "the red circle left of the blue square";
  box, mask   that object's tight box (xyxy pixels, x2/y2 exclusive) and its pixel mask;
  question    a question answered from the scene: colour / shape of a unique object ('other'),
              counts ('number', digits), existence of a colour-shape pair ('yes/no').
Relations use object centres: "A left of B" iff cx(A) < cx(B) (right/above/below alike).
Everything is drawn from `np.random.default_rng(seed)`: the same seed gives the same data.
"""
from __future__ import annotations

import dataclasses
import functools

import numpy as np

COLORS = {"red": (220, 30, 30), "green": (30, 170, 50), "blue": (30, 70, 230),
          "yellow": (240, 220, 30), "purple": (150, 40, 190)}
SHAPES = ("circle", "square", "triangle")
RELATIONS = ("left of", "right of", "above", "below")
BACKGROUNDS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field",
               "immunohistochemistry")
NUMBER_WORDS = ("0", "1", "2", "3", "4")


@dataclasses.dataclass(frozen=True)
class SceneObject:
  color: str
  shape: str
  box: tuple[int, int, int, int]  # x1, y1, x2, y2 (exclusive)

  @property
  def center(self) -> tuple[float, float]:
    return ((self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2)


@functools.lru_cache(maxsize=None)
def _photo(name: str) -> np.ndarray:
  from skimage import data  # noqa: PLC0415
  img = getattr(data, name)()
  if img.ndim == 2:
    img = np.repeat(img[..., None], 3, -1)
  return np.ascontiguousarray(img[..., :3]).astype(np.uint8)


def background(rng: np.random.Generator, size: int) -> np.ndarray:
  """A random square crop (side >= half the short side) of a bundled photo, resized to size."""
  from PIL import Image  # noqa: PLC0415
  img = _photo(BACKGROUNDS[rng.integers(len(BACKGROUNDS))])
  h, w = img.shape[:2]
  side = int(rng.integers(min(h, w) // 2, min(h, w) + 1))
  y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
  crop = Image.fromarray(img[y:y + side, x:x + side])
  return np.asarray(crop.resize((size, size), Image.BILINEAR), np.uint8)


def shape_mask(shape: str, box: tuple[int, int, int, int], size: int) -> np.ndarray:
  """bool [size, size] mask of `shape` inscribed in box (pixel centres tested)."""
  x1, y1, x2, y2 = box
  yy, xx = np.mgrid[0:size, 0:size] + 0.5
  inside = (xx >= x1) & (xx < x2) & (yy >= y1) & (yy < y2)
  w, h = x2 - x1, y2 - y1
  if shape == "square":
    return inside
  if shape == "circle":
    return inside & (((xx - (x1 + x2) / 2) / (w / 2)) ** 2 + ((yy - (y1 + y2) / 2) / (h / 2)) ** 2
                     <= 1.0)
  if shape == "triangle":  # apex at top centre, base at the bottom
    return inside & (np.abs(xx - (x1 + x2) / 2) <= (yy - y1) / h * (w / 2))
  raise ValueError(f"unknown shape {shape!r}; choose one of {SHAPES}.")


def tight_box(mask: np.ndarray) -> tuple[int, int, int, int]:
  """xyxy (exclusive) bounding box of a non-empty bool mask."""
  ys, xs = np.nonzero(mask)
  return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def relation_holds(a: SceneObject, rel: str, b: SceneObject) -> bool:
  (ax, ay), (bx, by) = a.center, b.center
  return {"left of": ax < bx, "right of": ax > bx, "above": ay < by, "below": ay > by}[rel]


def make_scene(rng: np.random.Generator, size: int = 64, n_objects: tuple[int, int] = (2, 4),
               obj_frac: tuple[float, float] = (0.22, 0.34), duplicate_p: float = 0.3):
  """Returns (image uint8 [S,S,3], background uint8 [S,S,3], objects, masks bool [N,S,S]).

  With probability `duplicate_p` one colour-shape pair appears twice (needs a relation).
  Boxes are tight around the drawn masks; objects never overlap (1 px gap).
  """
  bg = background(rng, size)
  n = int(rng.integers(n_objects[0], n_objects[1] + 1))
  names = list(COLORS)
  kinds = []
  for _ in range(n):
    kinds.append((names[rng.integers(len(names))], SHAPES[rng.integers(len(SHAPES))]))
  if n >= 3 and rng.random() < duplicate_p:
    kinds[1] = kinds[0]
  occupied = np.zeros((size, size), bool)
  objects, masks = [], []
  for color, shape in kinds:
    for _ in range(200):
      s = int(rng.integers(int(obj_frac[0] * size), int(obj_frac[1] * size) + 1))
      x1, y1 = int(rng.integers(0, size - s + 1)), int(rng.integers(0, size - s + 1))
      lo_x, lo_y = max(0, x1 - 1), max(0, y1 - 1)
      if not occupied[lo_y:y1 + s + 1, lo_x:x1 + s + 1].any():
        break
    else:
      continue  # no room left; fewer objects
    m = shape_mask(shape, (x1, y1, x1 + s, y1 + s), size)
    occupied[y1:y1 + s, x1:x1 + s] = True
    objects.append(SceneObject(color, shape, tight_box(m)))
    masks.append(m)
  img = bg.copy()
  for o, m in zip(objects, masks):
    img[m] = COLORS[o.color]
  return img, bg, objects, np.stack(masks) if masks else np.zeros((0, size, size), bool)


def _matches(o: SceneObject, color: str | None, shape: str | None) -> bool:
  return (color is None or o.color == color) and (shape is None or o.shape == shape)


def _phrase(color: str | None, shape: str | None) -> str:
  return f"the {color or ''} {shape or 'object'}".replace("  ", " ")


def referring_expression(objects: list[SceneObject], t: int, rng: np.random.Generator,
                         relation_p: float = 0.4) -> str | None:
  """A phrase that matches only objects[t], or None if none of the templates is unique."""
  o = objects[t]
  options = []
  for color, shape in ((o.color, None), (None, o.shape), (o.color, o.shape)):
    if sum(_matches(p, color, shape) for p in objects) == 1:
      options.append(_phrase(color, shape))
  rel_options = []
  same = [p for p in objects if _matches(p, o.color, o.shape)]
  for r, ref in enumerate(objects):
    if r == t or sum(_matches(p, ref.color, ref.shape) for p in objects) != 1:
      continue
    for rel in RELATIONS:
      if relation_holds(o, rel, ref) and sum(relation_holds(p, rel, ref) for p in same) == 1:
        rel_options.append(f"{_phrase(o.color, o.shape)} {rel} {_phrase(ref.color, ref.shape)}")
  if rel_options and (not options or rng.random() < relation_p):
    return rel_options[rng.integers(len(rel_options))]
  if options:
    return options[rng.integers(len(options))]
  return None


def make_question(objects: list[SceneObject], rng: np.random.Generator) -> tuple[str, str, str]:
  """(question, answer, answer_type) with the answer computed from `objects`."""
  kind = rng.integers(4)
  if kind == 0:  # colour of a unique shape
    uniq = [o for o in objects if sum(p.shape == o.shape for p in objects) == 1]
    if uniq:
      o = uniq[rng.integers(len(uniq))]
      return f"what color is the {o.shape}?", o.color, "other"
  if kind == 1:  # shape of a unique colour
    uniq = [o for o in objects if sum(p.color == o.color for p in objects) == 1]
    if uniq:
      o = uniq[rng.integers(len(uniq))]
      return f"what shape is the {o.color} object?", o.shape, "other"
  if kind == 2:  # existence of a colour-shape pair (half of them present)
    if rng.random() < 0.5:
      o = objects[rng.integers(len(objects))]
      c, s = o.color, o.shape
    else:
      c, s = list(COLORS)[rng.integers(len(COLORS))], SHAPES[rng.integers(len(SHAPES))]
    ans = "yes" if any(_matches(p, c, s) for p in objects) else "no"
    return f"is there a {c} {s}?", ans, "yes/no"
  if rng.random() < 0.5:
    s = SHAPES[rng.integers(len(SHAPES))]
    return f"how many {s}s are there?", str(sum(p.shape == s for p in objects)), "number"
  c = list(COLORS)[rng.integers(len(COLORS))]
  return f"how many {c} objects are there?", str(sum(p.color == c for p in objects)), "number"


def answer_vocab() -> list[str]:
  """All answers `make_question` can produce (index = class id)."""
  return list(COLORS) + list(SHAPES) + ["yes", "no"] + list(NUMBER_WORDS)


def generate(n: int, seed: int, size: int = 64, **scene_kw) -> dict:
  """n samples. Returns dict of numpy arrays / lists:
  image uint8 [n,S,S,3], box float32 [n,4] xyxy, mask uint8 [n,S,S], expression [n] str,
  question [n] str, answer [n] str, answer_type [n] str, objects [n] list[SceneObject],
  target int32 [n] (index into objects).
  """
  if size < 32 or size % 32:
    raise ValueError(f"scene size must be a multiple of 32 (LaConvNet stride), got {size}.")
  rng = np.random.default_rng(seed)
  out = {k: [] for k in ("image", "box", "mask", "expression", "question", "answer",
                         "answer_type", "objects", "target")}
  while len(out["image"]) < n:
    img, _, objs, masks = make_scene(rng, size, **scene_kw)
    if len(objs) < 2:
      continue
    t = int(rng.integers(len(objs)))
    expr = referring_expression(objs, t, rng)
    if expr is None:
      continue
    q, a, at = make_question(objs, rng)
    for k, v in (("image", img), ("box", np.asarray(objs[t].box, np.float32)),
                 ("mask", masks[t].astype(np.uint8)), ("expression", expr), ("question", q),
                 ("answer", a), ("answer_type", at), ("objects", objs), ("target", t)):
      out[k].append(v)
  for k in ("image", "box", "mask"):
    out[k] = np.stack(out[k])
  out["target"] = np.asarray(out["target"], np.int32)
  return out
