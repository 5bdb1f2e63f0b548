"""FID and KID of generated images against the real images of the same eval split (spec §5).

Loop evaluator `gan_fid` (config.evals.<name>.evaluators.<label> = {"type": "gan_fid", ...}):
reads {"pred": generated images, "target": real images} in [0, 1] ([B, H, W, 3]), quantises
the fakes to uint8 (the official protocol), extracts Inception-v3 pool3 features (the
pytorch-fid network, `jaxvision.evaluators.inception`) and returns
{"fid"} (+ {"kid", "kid_std"} with kid=True) through `jaxvision.evaluators.gan`. The real
features are extracted during the first evaluation and reused afterwards (the split is fixed).

Options: weights (pytorch-fid `pt_inception-2015-12-05-6726825d.pth` or an .npz of its
state_dict; "" = $JAXVISION_INCEPTION_WEIGHTS; "off" = skip, no metric), kid, kid_subsets,
kid_subset_size, resize (to 299x299, the protocol), quantize. A missing weights file stops the
run at start-up with one line naming the file and the flag.

extractor: 'inception' (default) or 'pixels' = a CPU stand-in for demos: 8x8 area-averaged RGB
(192-d), reported as {"pixel_fid"} (+ "pixel_kid"), NOT comparable to Inception FID.

Unpaired splits (CycleGAN: 120 test horses, 140 test zebras in one padded eval split): the
optional boolean outputs {"fake_valid", "real_valid"} select the rows that count as fakes and
as reals (each combined with the batch padding mask).
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from jaxvision.core.errors import ConfigError
from jaxvision.core.evaluation import WeightsEvaluator, register
from jaxvision.evaluators import gan, inception
from jaxvision.evaluators.base import ConcatAccumulator


def resolve_weights(weights: str) -> str:
  """The weights path to use ('off' stays 'off'); ConfigError naming the file when missing."""
  if weights == "off":
    return weights
  try:
    return inception.find_weights(
        weights, how="--config.evals.<eval>.evaluators.<label>.weights=PATH (or weights=off "
        "to skip FID/KID)")
  except FileNotFoundError as e:
    raise ConfigError(f"evaluator gan_fid: {e}") from None


@register("gan_fid")
class ImageFid(WeightsEvaluator):
  """FID / KID of {"pred"} against {"target"} images of the same eval split (see module)."""
  inputs = (("fake", "pred"), ("real", "target"))
  optional = (("fake_valid", "fake_valid"), ("real_valid", "real_valid"))

  def __init__(self, weights: str = "", kid: bool = True, kid_subsets: int = 100,
               kid_subset_size: int = 1000, resize: bool = True, quantize: bool = True,
               keys=None, features_fn: Optional[Callable] = None, extractor: str = "inception"):
    if extractor not in ("inception", "pixels"):
      raise ConfigError(f"evaluator gan_fid: extractor must be 'inception' or 'pixels', got "
                        f"{extractor!r}.")
    self.prefix = "pixel_" if extractor == "pixels" else ""
    if extractor == "pixels" and features_fn is None:
      features_fn = pixel_features
    self.weights = resolve_weights(weights) if features_fn is None else "given"
    self.kid, self.kid_subsets, self.kid_subset_size = bool(kid), kid_subsets, kid_subset_size
    self.resize, self.quantize = bool(resize), bool(quantize)
    self._features_fn = features_fn   # images [B, H, W, 3] in [0, 1] -> [B, D] (tests)
    self._real: Optional[np.ndarray] = None
    super().__init__(keys)

  def reset(self):
    self.acc = ConcatAccumulator()

  def _features(self, images) -> np.ndarray:
    if self._features_fn is None:
      self._features_fn = inception.InceptionFeatureExtractor(self.weights, resize=self.resize)
    return np.asarray(self._features_fn(images), np.float64)

  def update(self, out, mask):
    if self.off:
      return
    def rows(kind):
      m = np.ones(len(out[self.keys[kind]]), bool) if mask is None else np.asarray(mask, bool)
      valid = out.get(self.keys[f"{kind}_valid"])
      return m if valid is None else m & np.asarray(valid, bool).reshape(-1)

    fake = np.clip(np.asarray(out[self.keys["fake"]], np.float32), 0.0, 1.0)
    if self.quantize:
      fake = np.round(fake * 255.0) / 255.0
    self.acc.update({"fake": self._features(fake)}, rows("fake"))
    if self._real is None:
      real = self._features(np.asarray(out[self.keys["real"]], np.float32))
      self.acc.update({"real": real}, rows("real"))

  def result(self, context=None) -> dict[str, float]:
    if self.off:
      return {}
    got = self.acc.result()
    if self._real is None:
      self._real = got["real"]
    fake = got["fake"]
    out = {"fid": gan.fid_from_features(self._real, fake)}
    if self.kid:
      out["kid"], out["kid_std"] = gan.kid_from_features(self._real, fake, self.kid_subsets,
                                                         self.kid_subset_size)
    return {self.prefix + k: float(v) for k, v in out.items()}


def pixel_features(images) -> np.ndarray:
  """[B, H, W, 3] in [0, 1] (H, W multiples of 8) -> [B, 192]: 8x8 area-averaged pixels."""
  x = np.asarray(images, np.float64)
  b, h, w, c = x.shape
  return x.reshape(b, 8, h // 8, 8, w // 8, c).mean(axis=(2, 4)).reshape(b, -1)
