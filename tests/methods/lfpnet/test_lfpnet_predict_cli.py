"""The predict CLI: bad input gives one clear line; a saved tiny model writes an alpha PNG."""
import os
import sys

import jax
import numpy as np
import pytest
from flax import nnx
from PIL import Image

from jaxvision.methods.lfpnet import predict

sys.path.insert(0, os.path.dirname(__file__))
import lfpnet_testlib as T  # noqa: E402


@pytest.fixture
def files(tmp_path):
  rng = np.random.default_rng(0)
  img = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
  tri = np.zeros((40, 50), np.uint8)
  tri[:, 25:] = 255
  tri[:, 20:30] = 128
  Image.fromarray(img).save(tmp_path / "img.png")
  Image.fromarray(tri).save(tmp_path / "tri.png")
  return tmp_path, img, tri


def _err(capsys, argv):
  assert predict.main(argv) == 2
  err = capsys.readouterr().err.strip()
  assert err.count("\n") == 0, err
  return err


def test_bad_inputs_one_line(files, capsys):
  d, img, tri = files
  base = ["--image", str(d / "img.png"), "--out", str(d / "a.png")]
  bad = tri.copy()
  bad[0, :3] = [1, 127, 200]
  Image.fromarray(bad).save(d / "bad.png")
  err = _err(capsys, base + ["--trimap", str(d / "bad.png")])
  assert "values other than 0/128/255: 1, 127, 200 (3 pixels)" in err
  assert "--trimap-nearest" in err
  Image.fromarray(tri[:, :49]).save(d / "small.png")
  assert "differs from the image size 50x40" in _err(capsys, base + ["--trimap",
                                                                     str(d / "small.png")])
  Image.fromarray(np.where(tri == 128, 0, tri).astype(np.uint8)).save(d / "known.png")
  assert "no unknown (128) pixels" in _err(capsys, base + ["--trimap", str(d / "known.png")])
  assert "no weights" in _err(capsys, base + ["--trimap", str(d / "tri.png")])
  assert "no weights" in _err(capsys, base + ["--trimap", str(d / "bad.png"), "--trimap-nearest"])
  assert not (d / "a.png").exists()


def test_alphamatting_test_layout_jobs(files, capsys):
  d, img, tri = files
  root = d / "am"
  for sub in ("input_lowres", "trimap_lowres/Trimap1", "trimap_lowres/User"):
    (root / sub).mkdir(parents=True)
  for n in ("doll", "net"):
    Image.fromarray(img).save(root / "input_lowres" / f"{n}.png")
    for t in ("Trimap1", "User"):
      Image.fromarray(tri).save(root / "trimap_lowres" / t / f"{n}.png")
  jobs = predict._alphamatting_jobs(str(root), str(d / "out"))
  assert [(os.path.relpath(i, root), os.path.relpath(t, root), os.path.relpath(o, d))
          for i, t, o in jobs] == [
              (f"input_lowres/{n}.png", f"trimap_lowres/{s}/{n}.png", f"out/{s}/{n}.png")
              for s in ("Trimap1", "User") for n in ("doll", "net")]
  assert "pass either --image and --trimap, or --alphamatting" in _err(
      capsys, ["--alphamatting", str(root), "--image", "x.png", "--out", "o"])
  (root / "trimap_lowres" / "User" / "net.png").unlink()
  assert "same file names" in _err(capsys, ["--alphamatting", str(root), "--out", "o"])
  assert "does not exist; unzip the alphamatting.com test downloads" in _err(
      capsys, ["--alphamatting", str(d / "nowhere"), "--out", "o"])


def test_predict_writes_alpha_with_saved_params(files):
  d, img, tri = files
  m, _ = T.tiny()
  predict.save_params(m, str(d / "p.npz"))
  m2 = predict.load_params(str(d / "p.npz"))
  assert m2.widths == m.widths and m2.blocks == m.blocks
  saved, loaded = (jax.tree.leaves(nnx.state(x, nnx.Param)) for x in (m, m2))
  assert len(saved) == len(loaded)
  for a, b in zip(saved, loaded):  # the parameters round-trip exactly
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  out = d / "out"
  assert predict.main(["--image", str(d / "img.png"), "--trimap", str(d / "tri.png"), "--out",
                       str(out / "a.png"), "--params", str(d / "p.npz"), "--tile", "32",
                       "--tta", "official", "--batch-size", "2"]) == 0
  a = np.asarray(Image.open(out / "a.png"))
  assert a.shape == (40, 50) and a.dtype == np.uint8
  assert (a[tri == 0] == 0).all() and (a[tri == 255] == 255).all()
  # The same numbers as the library call on the loaded model (equal to the saved one above;
  # the CLI's forward program, so it is compiled once).
  from jaxvision.methods.lfpnet.inference import model_apply_fn, predict_alpha
  want = predict_alpha(model_apply_fn(m2), img, tri, tile=32, tta="official", batch_size=2)
  np.testing.assert_array_equal(a, want)
