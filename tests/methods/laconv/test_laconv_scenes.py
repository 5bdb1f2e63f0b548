"""Procedural scenes: pixels, boxes, masks, expressions and answers agree with the drawn scene."""
import re

import numpy as np
import pytest

from jaxvision.methods.laconv import scenes as S

COLOR_OF = {v: k for k, v in S.COLORS.items()}


def _shape_from_pixels(mask):
  x1, y1, x2, y2 = S.tight_box(mask)
  fill = mask.sum() / ((x2 - x1) * (y2 - y1))
  return "square" if fill > 0.95 else "circle" if fill > 0.68 else "triangle"


def test_scene_pixels_match_objects():
  rng = np.random.default_rng(0)
  for _ in range(10):
    img, bg, objs, masks = S.make_scene(rng, 64)
    assert img.shape == (64, 64, 3) and img.dtype == np.uint8 and len(objs) == len(masks) >= 2
    union = masks.any(0)
    assert masks.sum(0).max() == 1  # no overlaps
    np.testing.assert_array_equal(img[~union], bg[~union])
    for o, m in zip(objs, masks):
      assert (img[m] == S.COLORS[o.color]).all()
      assert S.tight_box(m) == o.box
      assert _shape_from_pixels(m) == o.shape


def _parse_objects(img, objs):
  """Objects re-derived from pixels: colour from the drawn pixels, shape from the fill ratio."""
  out = []
  for o in objs:
    m = np.zeros(img.shape[:2], bool)
    x1, y1, x2, y2 = o.box
    m[y1:y2, x1:x2] = True
    m &= (img == S.COLORS[o.color]).all(-1)
    out.append(S.SceneObject(COLOR_OF[tuple(img[m][0])], _shape_from_pixels(m), S.tight_box(m)))
  return out


def _select(objs, phrase):
  words = phrase.split()[1:]  # drop "the"
  color = words[0] if words[0] in S.COLORS else None
  shape = words[-1] if words[-1] in S.SHAPES else None
  return [i for i, o in enumerate(objs) if (color is None or o.color == color)
          and (shape is None or o.shape == shape)]


def _resolve(objs, expr):
  for rel in S.RELATIONS:
    m = re.fullmatch(rf"(the .+?) {rel} (the .+)", expr)
    if m:
      (ref,) = _select(objs, m.group(2))
      cx = lambda o: (o.box[0] + o.box[2]) / 2  # noqa: E731
      cy = lambda o: (o.box[1] + o.box[3]) / 2  # noqa: E731
      test = {"left of": lambda a, b: cx(a) < cx(b), "right of": lambda a, b: cx(a) > cx(b),
              "above": lambda a, b: cy(a) < cy(b), "below": lambda a, b: cy(a) > cy(b)}[rel]
      return [i for i in _select(objs, m.group(1)) if test(objs[i], objs[ref])]
  return _select(objs, expr)


def _answer(objs, q):
  if m := re.fullmatch(r"what color is the (\w+)\?", q):
    (o,) = [o for o in objs if o.shape == m.group(1)]
    return o.color
  if m := re.fullmatch(r"what shape is the (\w+) object\?", q):
    (o,) = [o for o in objs if o.color == m.group(1)]
    return o.shape
  if m := re.fullmatch(r"is there a (\w+) (\w+)\?", q):
    return "yes" if any(o.color == m.group(1) and o.shape == m.group(2) for o in objs) else "no"
  if m := re.fullmatch(r"how many (\w+)s are there\?", q):
    return str(sum(o.shape == m.group(1) for o in objs))
  m = re.fullmatch(r"how many (\w+) objects are there\?", q)
  return str(sum(o.color == m.group(1) for o in objs))


@pytest.fixture(scope="module")
def data():
  return S.generate(60, seed=3, size=64)


def test_generated_samples_are_true_to_the_scene(data):
  assert data["image"].shape == (60, 64, 64, 3) and data["mask"].shape == (60, 64, 64)
  relations = 0
  for i in range(60):
    img, objs = data["image"][i], _parse_objects(data["image"][i], data["objects"][i])
    assert objs == data["objects"][i]
    t = int(data["target"][i])
    mask = data["mask"][i].astype(bool)
    assert (img[mask] == S.COLORS[objs[t].color]).all()
    assert tuple(data["box"][i].astype(int)) == S.tight_box(mask) == objs[t].box
    assert _resolve(objs, data["expression"][i]) == [t], data["expression"][i]
    assert _answer(objs, data["question"][i]) == data["answer"][i], data["question"][i]
    assert data["answer"][i] in S.answer_vocab()
    relations += any(r in data["expression"][i] for r in S.RELATIONS)
  assert relations >= 5 and len(set(data["answer_type"])) == 3


def test_generate_is_seeded(data):
  again = S.generate(5, seed=3, size=64)
  np.testing.assert_array_equal(again["image"], data["image"][:5])
  assert again["expression"] == data["expression"][:5]
  other = S.generate(5, seed=4, size=64)
  assert not np.array_equal(other["image"], again["image"])
  with pytest.raises(ValueError, match="multiple of 32"):
    S.generate(1, seed=0, size=50)
