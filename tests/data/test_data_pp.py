"""Batch pp ops (jaxvision.data.pp): equal to per-example loops, joint draws, one-line errors."""
import numpy as np
import pytest

from jaxvision.data import pp
from jaxvision.data.pp import PPError


def _img(shape, seed=0, dtype=np.uint8):
  r = np.random.default_rng(seed)
  return r.integers(0, 256, shape).astype(dtype)


def _run(text, batch, seed=0):
  return pp.parse(text)(dict(batch), np.random.default_rng(seed))


def _one_line_error(text, batch, *needles):
  with pytest.raises(PPError) as e:
    _run(text, batch)
  msg = str(e.value)
  assert "\n" not in msg
  for n in needles:
    assert n in msg, msg
  return msg


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
@pytest.mark.parametrize("pad", [0, 1, 4])
def test_pad_crop_equals_per_example_pad_and_crop(pad, dtype):
  x = _img((37, 8, 6, 3), 1, dtype)
  m = _img((37, 8, 6), 2, dtype)  # a second key without channels gets the same offsets
  out = _run(f"pad_crop({pad}, keys=('image', 'mask'))", {"image": x, "mask": m}, seed=5)
  ys, xs = np.random.default_rng(5).integers(0, 2 * pad + 1, size=(2, len(x)))
  for key, arr in (("image", x), ("mask", m)):
    ref = []
    for i, v in enumerate(arr):
      p = np.pad(v, [(pad, pad), (pad, pad)] + [(0, 0)] * (v.ndim - 2))
      ref.append(p[ys[i]:ys[i] + 8, xs[i]:xs[i] + 6])
    np.testing.assert_array_equal(out[key], np.stack(ref))
    assert out[key].dtype == dtype
  if pad:  # some example really moved, and zeros came in
    assert (out["image"] != x).any() and (out["image"] == 0).sum() > (x == 0).sum()


def test_flips_and_transpose_equal_loops_and_share_one_draw():
  x, y = _img((50, 5, 5, 3), 3), _img((50, 5, 5, 1), 4)
  r = np.random.default_rng(9)
  for op, fn in (("flip_lr", lambda v: v[:, ::-1]), ("flip_ud", lambda v: v[::-1]),
                 ("transpose", lambda v: v.swapaxes(0, 1))):
    out = _run(f"{op}(keys=('image', 'alpha'))", {"image": x, "alpha": y}, seed=9)
    draw = np.random.default_rng(9).random(len(x)) < 0.5
    assert 10 < draw.sum() < 40
    for key, arr in (("image", x), ("alpha", y)):
      ref = np.stack([fn(v) if d else v for v, d in zip(arr, draw)])
      np.testing.assert_array_equal(out[key], ref)
  np.testing.assert_array_equal(_run("flip_lr(p=0.0)", {"image": x})["image"], x)
  np.testing.assert_array_equal(_run("flip_lr(p=1.0)", {"image": x})["image"], x[:, :, ::-1])
  # variable-size examples (lists) flip per example with the same draws
  xs = [_img((4, 3 + i, 2), i) for i in range(6)]
  out = _run("flip_lr(p=1.0)", {"image": xs})["image"]
  for v, o in zip(xs, out):
    np.testing.assert_array_equal(o, v[:, ::-1])
  del r


@pytest.mark.parametrize("preset", sorted(pp.NORMS))
def test_normalize_presets(preset):
  x = _img((4, 3, 3, 3), 5)
  out = _run(f"to_float|normalize('{preset}')", {"image": x})["image"]
  mean, std = (np.asarray(v, np.float64) for v in pp.NORMS[preset])
  np.testing.assert_allclose(out, (x / 255.0 - mean) / std, rtol=1e-5, atol=1e-5)
  assert out.dtype == np.float32


def test_normalize_explicit_and_errors():
  x = np.full((2, 2, 2, 3), 0.75, np.float32)
  out = _run("normalize(mean=(0.5, 0.25, 0.75), std=(0.25, 0.5, 1.0))", {"image": x})["image"]
  np.testing.assert_allclose(out[0, 0, 0], [1.0, 1.0, 0.0], atol=1e-6)
  _one_line_error("normalize('cifar')", {"image": x}, "normalize", "cifar10", "imagenet")
  _one_line_error("normalize('cifar10')", {"image": x[..., :1]}, "normalize", "'image'", "channels")


def test_to_float_lists_equal_arrays():
  x = _img((3, 4, 4, 3), 6)
  a = _run("to_float", {"image": x})["image"]
  b = _run("to_float", {"image": list(x)})["image"]
  np.testing.assert_array_equal(a, np.stack(b))
  np.testing.assert_array_equal(a, x.astype(np.float32) * np.float32(1 / 255))


def test_random_crop_keeps_keys_aligned_and_equals_loop():
  n, H, W = 20, 12, 10
  coord = np.stack(np.meshgrid(np.arange(H), np.arange(W), indexing="ij"), -1)  # [H, W, 2]
  coords = np.broadcast_to(coord, (n, H, W, 2)).astype(np.int32)
  img = _img((n, H, W, 3), 7)
  out = _run("random_crop((5, 4), keys=('coord', 'image'))", {"coord": coords, "image": img}, 3)
  assert out["coord"].shape == (n, 5, 4, 2) and out["image"].shape == (n, 5, 4, 3)
  ys, xs = out["coord"][:, 0, 0, 0], out["coord"][:, 0, 0, 1]
  assert len(set(zip(ys.tolist(), xs.tolist()))) > 5  # offsets vary
  for i in range(n):
    np.testing.assert_array_equal(out["image"][i], img[i, ys[i]:ys[i] + 5, xs[i]:xs[i] + 4])
    np.testing.assert_array_equal(out["coord"][i], coord[ys[i]:ys[i] + 5, xs[i]:xs[i] + 4])
  # variable-size list examples take the same path
  lst = [_img((8 + i, 9 + i, 1), i) for i in range(5)]
  out = _run("random_crop(6, keys=('image', 'm'))", {"image": lst, "m": [v + 1 for v in lst]}, 1)
  np.testing.assert_array_equal(out["m"], out["image"] + 1)


def test_random_crop_scale_keys_lr_is_the_window_of_the_lr_image():
  from jaxvision.ops.imresize import imresize
  r = np.random.default_rng(0)
  hr = r.random((6, 48, 40, 3)).astype(np.float32)
  lr = imresize(hr, 1 / 4)  # [6, 12, 10, 3]
  out = _run("random_crop(24, keys=('hr',), scale_keys={'lr': 0.25})", {"hr": hr, "lr": lr}, 2)
  assert out["lr"].shape == (6, 6, 6, 3) and out["hr"].shape == (6, 24, 24, 3)
  for i in range(6):  # locate the HR window, then the LR window must sit at 1/4 of it
    hits = [(y, x) for y in range(0, 25) for x in range(0, 17)
            if np.array_equal(hr[i, y:y + 24, x:x + 24], out["hr"][i])]
    assert len(hits) == 1
    y, x = hits[0]
    assert y % 4 == 0 and x % 4 == 0
    np.testing.assert_array_equal(out["lr"][i], lr[i, y // 4:y // 4 + 6, x // 4:x // 4 + 6])
    # away from the crop border (kernel support 2 LR px) it is the bicubic-down of the HR crop
    np.testing.assert_allclose(out["lr"][i][2:-2, 2:-2], imresize(out["hr"][i], 1 / 4)[2:-2, 2:-2],
                               atol=1e-5)


def test_random_crop_mismatch_and_too_small_fail_naming_op_and_key():
  a, b = _img((2, 10, 10, 3)), _img((2, 10, 9, 1))
  _one_line_error("random_crop(4, keys=('image', 'trimap'))", {"image": a, "trimap": b},
                  "random_crop", "'trimap'", "(10, 9)")
  _one_line_error("random_crop(8, keys=('hr',), scale_keys={'lr': 0.5})",
                  {"hr": a, "lr": _img((2, 6, 5, 3))}, "random_crop", "'lr'")
  _one_line_error("random_crop(11)", {"image": a}, "random_crop(11)", "'image'", "smaller")
  _one_line_error("random_crop(6, keys=('hr',), scale_keys={'lr': 0.25})", {"hr": a},
                  "random_crop(6)", "multiple of 4")
  _one_line_error("transpose", {"image": b}, "transpose", "'image'", "square")


def test_center_crop_and_pad_to_max():
  lst = [_img((5 + i, 7 - i, 2), i) for i in range(3)]
  cc = _run("center_crop((3, 2))", {"image": lst})["image"]
  for v, o in zip(lst, cc):
    y0, x0 = (v.shape[0] - 3) // 2, (v.shape[1] - 2) // 2
    np.testing.assert_array_equal(o, v[y0:y0 + 3, x0:x0 + 2])
  arr = _img((2, 6, 6, 1))
  np.testing.assert_array_equal(_run("center_crop(2)", {"image": arr})["image"], arr[:, 2:4, 2:4])
  out = _run("pad_to_max(multiple=4)", {"image": lst})
  assert out["image"].shape == (3, 8, 8, 2)
  np.testing.assert_array_equal(out["image_hw"], [[5, 7], [6, 6], [7, 5]])
  for v, o in zip(lst, out["image"]):
    h, w = v.shape[:2]
    np.testing.assert_array_equal(o[:h, :w], v)
    assert not o[h:].any() and not o[:, w:].any()


def test_bad_pp_strings_fail_with_one_line():
  x = {"image": _img((2, 4, 4, 3))}
  assert "unknown pp op 'flip'" in _one_line_error("flip", x, "flip_lr", "pad_crop")
  _one_line_error("pad_crop(4", x, "pad_crop(4", "syntax")
  _one_line_error("pad_crop(n)", x, "pad_crop(n)", "literals")
  _one_line_error("flip_lr(keyz=('image',))", x, "flip_lr", "keyz")
  _one_line_error("pad_crop(-1)", x, "pad_crop(-1)")
  for name, args in (("to_float", ""), ("normalize", "'half', "), ("pad_crop", "1, "),
                     ("flip_lr", ""), ("random_crop", "2, "), ("center_crop", "2, "),
                     ("pad_to_max", ""), ("cast", "'int32', ")):
    _one_line_error(f"{name}({args}keys=('trimap',))", x, f"'{name}'", "'trimap'", "'image'")
  with pytest.raises(PPError, match="'keep' needs key 'label'"):
    pp.check("keep('image', 'label')", x)
  assert set(pp.check("to_float|keep('image')", x)) == {"image"}


def test_finalize_names_the_key_that_still_differs():
  with pytest.raises(PPError, match="'hr'.*pad_to_max"):
    pp.finalize({"hr": [np.zeros((2, 3)), np.zeros((3, 3))]})


def test_device_pad_crop_flip_matches_the_host_ops_per_example():
  import jax
  x = _img((16, 6, 5, 3), 11)
  fn = jax.jit(lambda u, k: pp.device_pad_crop_flip(u, k, pad=2, mean="cifar10"))
  y = np.asarray(fn(x, jax.random.key(3)))
  mean, std = (np.asarray(v, np.float32) for v in pp.NORMS["cifar10"])
  found = set()
  for i in range(16):  # some (offset, flip) of the host ops gives exactly this example
    p = np.pad(x[i], [(2, 2), (2, 2), (0, 0)])
    cands = [(yy, xx, f) for yy in range(5) for xx in range(5) for f in (0, 1)
             if np.allclose(y[i], ((p[yy:yy + 6, xx:xx + 5][:, ::-1] if f else
                                    p[yy:yy + 6, xx:xx + 5]) / 255 - mean) / std, atol=1e-5)]
    assert cands, i
    found.update((c[0], c[2]) for c in cands)
  assert len(found) > 4  # offsets and flips really vary
  np.testing.assert_array_equal(np.asarray(fn(x, jax.random.key(3))), y)  # same key, same batch
