"""`gan_fid` loop evaluator: FID + KID of generated vs real eval images through
jaxvision.evaluators.gan (uint8-quantised fakes, masked rows, real features cached across
evaluations), and the one-line start-up errors for missing Inception weights."""
import numpy as np
import pytest

import jaxvision.methods.gcc  # noqa: F401  (registers gan_fid)
from jaxvision.core import evaluation
from jaxvision.core.errors import ConfigError
from jaxvision.evaluators import gan, inception


def _feats(x):
  """Cheap stand-in for Inception: per-image channel means and stds -> [B, 6]."""
  x = np.asarray(x, np.float64)
  return np.concatenate([x.mean(axis=(1, 2)), x.std(axis=(1, 2))], axis=1)


def test_missing_weights_fail_at_construction_and_off_skips(monkeypatch, tmp_path):
  monkeypatch.delenv(inception.ENV_VAR, raising=False)
  with pytest.raises(ConfigError, match=f"Inception-v3 FID weights not found.*"
                                        f"{inception.WEIGHTS_FILE}.*evaluators.<label>.weights=PATH"):
    evaluation.make("gan_fid")
  with pytest.raises(ConfigError, match="looked for '.*missing.pth'"):
    evaluation.from_config({"fid": {"type": "gan_fid", "weights": str(tmp_path / "missing.pth")}})
  off = evaluation.make("gan_fid", weights="off")
  assert off.required_keys() == []
  off.update({}, np.ones(2))
  assert off.result() == {}


def test_fid_kid_match_the_library_on_quantised_masked_rows():
  rng = np.random.default_rng(0)
  ev = evaluation.make("gan_fid", features_fn=_feats, kid_subsets=5, kid_subset_size=4)
  real = rng.uniform(size=(2, 6, 8, 8, 3)).astype(np.float32)
  fake = rng.uniform(-0.2, 1.2, size=(2, 6, 8, 8, 3)).astype(np.float32)
  masks = [np.ones(6), np.array([1, 1, 1, 0, 0, 0], np.float64)]   # 3 padded rows
  for b in range(2):
    ev.update({"pred": fake[b], "target": real[b]}, masks[b])
  got = ev.result({"step": 1})
  keep = lambda a: np.concatenate([a[0], a[1][:3]])  # noqa: E731
  q = np.round(np.clip(keep(fake), 0, 1) * 255) / 255
  fr, ff = _feats(keep(real)), _feats(q)
  assert got["fid"] == pytest.approx(gan.fid_from_features(fr, ff), rel=1e-9)
  kid, kid_std = gan.kid_from_features(fr, ff, 5, 4)
  assert (got["kid"], got["kid_std"]) == (pytest.approx(kid, rel=1e-9), pytest.approx(kid_std))
  assert got["fid"] > 0
  # second evaluation: real features come from the cache (other "target" rows are ignored),
  # and fakes equal to the reals give FID 0
  ev.reset()
  for b in range(2):
    ev.update({"pred": np.round(real[b] * 255) / 255, "target": np.zeros_like(real[b])}, masks[b])
  again = ev.result()
  fr_q = _feats(np.round(keep(real) * 255) / 255)
  assert again["fid"] == pytest.approx(gan.fid_from_features(fr, fr_q), abs=1e-9)
  assert again["fid"] < 1e-3 < got["fid"]
