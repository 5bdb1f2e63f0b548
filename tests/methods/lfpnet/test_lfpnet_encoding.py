"""Input encoding, trimap checks and generation, receptive-field coverage (spec §2.1, §5)."""
import json

import numpy as np
import pytest

from jaxvision.methods.lfpnet import coverage
from jaxvision.methods.lfpnet.encoding import (IMAGENET_MEAN, IMAGENET_STD, SIGMAS, check_trimap,
                                               distance_encoding, encode, make_trimap)


def test_encoding_values_closed_form():
  t = np.full((40, 50), 128, np.uint8)
  t[:, :5] = 0          # bg: columns 0-4
  t[10, 45] = 255       # one fg pixel
  img = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
  x, raw = encode(img, t)
  assert x.shape == (40, 50, 12) and raw.shape == (40, 50, 3)
  np.testing.assert_allclose(raw, img / 255.0, atol=1e-7)
  np.testing.assert_allclose(x[..., :3], (img / 255.0 - IMAGENET_MEAN) / IMAGENET_STD, atol=1e-5)
  np.testing.assert_array_equal(x[..., 3], t == 0)
  np.testing.assert_array_equal(x[..., 4], t == 128)
  np.testing.assert_array_equal(x[..., 5], t == 255)
  # Class pixels get 1 on all three sigmas.
  assert (x[:, :5, 6:9] == 1).all() and (x[10, 45, 9:12] == 1).all()
  # bg distance of column c is c - 4; fg distance is the Euclidean distance to (10, 45).
  for (r, c) in [(0, 5), (7, 20), (39, 49)]:
    for j, s in enumerate(SIGMAS):
      assert abs(x[r, c, 6 + j] - np.exp(-(c - 4) ** 2 / (2 * s * s))) < 1e-6
      d2 = (r - 10) ** 2 + (c - 45) ** 2
      assert abs(x[r, c, 9 + j] - np.exp(-d2 / (2 * s * s))) < 1e-6


def test_absent_class_gives_zeros():
  t = np.full((16, 16), 128, np.uint8)
  t[0, 0] = 255
  d = distance_encoding(t)
  assert (d[..., :3] == 0).all() and d[..., 3:].min() > 0


def test_check_trimap_values_and_nearest():
  t = np.array([[0, 128, 255], [3, 130, 250]], np.uint8)
  with pytest.raises(ValueError, match=r"values other than 0/128/255: 3, 130, 250 \(3 pixels\).*"
                                       r"nearest=True"):
    check_trimap(t)
  np.testing.assert_array_equal(check_trimap(t, nearest=True), [[0, 128, 255], [0, 128, 255]])
  assert check_trimap(np.stack([t] * 3, -1), nearest=True).shape == (2, 3)


def test_make_trimap_covers_soft_alpha():
  rng = np.random.default_rng(0)
  a = np.zeros((64, 64), np.float32)
  a[16:48, 16:48] = 1.0
  a[14:50, 14:16] = 0.5
  t = make_trimap(a, rng, (5, 5))
  assert set(np.unique(t)) <= {0, 128, 255}
  assert (t[(a > 0) & (a < 1)] == 128).all()
  assert (a[t == 255] == 1).all() and (a[t == 0] == 0).all()
  # Erosion by a 5x5 square removes 2 px from the fg square's border (border 16 -> 18).
  assert t[18:46, 18:46].min() == 255 and (t[16:18, 20] == 128).all()


def test_coverage_closed_form(tmp_path):
  # Unknown band columns 1..10 between bg column 0 and fg column 11: d = min(c, 11 - c).
  t = np.full((4, 12), 128, np.uint8)
  t[:, 0] = 0
  t[:, 11] = 255
  d = np.sort(coverage.unknown_distance(t))
  np.testing.assert_allclose(np.unique(d), [1, 2, 3, 4, 5])
  res = coverage.coverage([t], [0, 2, 4.5, 10])
  assert res["unknown_pixels"] == 40
  assert res["fraction_beyond_r"] == {"0": 1.0, "2": 0.6, "4.5": 0.2, "10": 0.0}
  from PIL import Image
  Image.fromarray(t).save(tmp_path / "a.png")
  out = tmp_path / "cov.json"
  assert coverage.main(["--trimaps", str(tmp_path), "--r", "2", "--json", str(out)]) == 0
  assert json.loads(out.read_text())["fraction_beyond_r"] == {"2.0": 0.6}


def test_jax_encoding_matches_host_encoding():
  import jax.numpy as jnp
  from jaxvision.methods.lfpnet.encoding import encode_jax
  rng = np.random.default_rng(0)
  img = rng.integers(0, 256, (2, 24, 20, 3), dtype=np.uint8)
  tri = rng.choice(np.array([0, 128, 255], np.uint8), size=(2, 24, 20), p=[0.05, 0.9, 0.05])
  tri[1][tri[1] == 255] = 128  # no fg in the second image: zeros
  want = np.stack([encode(i, t)[0] for i, t in zip(img, tri)])
  got = np.asarray(encode_jax(jnp.asarray(img / 255.0), jnp.asarray(tri)))
  np.testing.assert_allclose(got, want, atol=1e-5)
  assert (got[1, ..., 9:] == 0).all()
