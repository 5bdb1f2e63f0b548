"""Cityscapes mIoU of generated photos, segmented by DRN-D-105 (GCC / pix2pix, gcc.md §5).

Loop evaluator `drn_miou` (config.evals.<name>.evaluators.<label> = {"type": "drn_miou",
"weights": PATH}): reads {"pred": generated photos [B, h, w, 3] in [0, 1], "label": trainId
maps [B, H, W] (full resolution, 1024 x 2048)} and, per batch, as the official
`metric/mIoU_score.py`:

  1. quantise like `tensor2imgs`: uint8 = floor(255 * pred) ('floor'; 'round' / 'none' too);
  2. x = (uint8 / 255 - mean) / std, mean (0.2901, 0.3281, 0.2870), std (0.1830, 0.1866, 0.1845);
  3. DRNSeg (jaxvision.models.drn): stride-8 logits -> fixed bilinear x8 ConvTranspose ->
     log-softmax over the classes;
  4. bilinear resize to the label's H x W (PIL BILINEAR == jax.image.resize 'bilinear' when
     upsampling: half-pixel centres, edge weights renormalised), one chunk of `resize_batch`
     images at a time (19 x 1024 x 2048 float32 = 160 MB per image), then argmax;
  5. confusion matrix C[label, pred] over the pixels with 0 <= label < num_classes (255 and
     every trainId >= 19 ignored), summed over batches and hosts
     (`segmentation.MiouEvaluator`).

result: {"miou": nanmean_c IoU_c x 100, "pixel_acc", "iou_<class>": IoU_c x 100} with
IoU_c = C_cc / (row_c + col_c - C_cc) (NaN for a class absent from labels and predictions).
The official code rounds mIoU to 2 decimals when printing; this does not.

Options: weights = the official DRNSeg state_dict `drn-d-105_ms_cityscapes.pth` (GCC's
--drn_path; a .pth, or an .npz of the same names) or "" = $JAXVISION_DRN_WEIGHTS, "off" = skip
(no metric); a missing file stops the run at start-up with one line naming the file and the
flag. num_classes (19), quantize, resize_batch, model_kw (DRNSeg kwargs: widths, layers,
block, dtype; default DRN-D-105), logits_fn (tests: normalised images -> upsampled logits
[B, h, w, K], replacing the network).
"""
from __future__ import annotations

import os
from typing import Callable, Mapping, Optional

import jax
import jax.numpy as jnp
import numpy as np

from jaxvision.core.errors import ConfigError
from jaxvision.core.evaluation import WeightsEvaluator, register
from jaxvision.evaluators import image_quality, segmentation
from jaxvision.evaluators.base import allgather_sum, to_numpy

CITYSCAPES_CLASSES = ("road", "sidewalk", "building", "wall", "fence", "pole", "traffic_light",
                      "traffic_sign", "vegetation", "terrain", "sky", "person", "rider", "car",
                      "truck", "bus", "train", "motorcycle", "bicycle")
# fyu/drn datasets/cityscapes/info.json (the GCC SegList normalisation).
MEAN = (0.29010095242892997, 0.32808144844279574, 0.28696394422942517)
STD = (0.1829540508368939, 0.18656561047509476, 0.18447508988480435)
ENV_VAR = "JAXVISION_DRN_WEIGHTS"
WEIGHTS_FILE = "drn-d-105_ms_cityscapes.pth"
QUANTIZE = ("floor", "round", "none")


def find_weights(weights: str) -> str:
  """The DRNSeg weights path ('off' stays 'off'); ConfigError naming the file when missing."""
  if weights == "off":
    return weights
  path = os.path.expanduser(weights or os.environ.get(ENV_VAR, ""))
  if not path or not os.path.isfile(path):
    where = f" (looked for '{path}')" if path else ""
    raise ConfigError(
        f"evaluator drn_miou: DRN-D-105 Cityscapes weights not found{where}; supply the "
        f"official '{WEIGHTS_FILE}' (GCC --drn_path) via "
        f"--config.evals.<eval>.evaluators.<label>.weights=PATH or ${ENV_VAR} "
        f"(or weights=off to skip mIoU).")
  return path


def preprocess(images: jax.Array, quantize: str = "floor") -> jax.Array:
  """[B, h, w, 3] in [0, 1] -> the normalised DRN input (float32), uint8-quantised first."""
  x = jnp.clip(images.astype(jnp.float32), 0.0, 1.0)
  if quantize == "floor":    # tensor2imgs: (y + 1) / 2 * 255 clipped, astype(uint8)
    x = jnp.floor(x * 255.0) / 255.0
  elif quantize == "round":
    x = image_quality.quantize_uint8(x)
  return (x - jnp.asarray(MEAN, jnp.float32)) / jnp.asarray(STD, jnp.float32)


def labels_from_logits(up_logits: jax.Array, out_hw: tuple[int, int],
                       resize_batch: int = 1) -> jax.Array:
  """Upsampled logits [B, h, w, K] -> log-softmax -> bilinear resize to out_hw -> argmax:
  [B, H, W] int32. `resize_batch` images are resized at a time (peak memory)."""
  lsm = jax.nn.log_softmax(up_logits.astype(jnp.float32), axis=-1)
  k = lsm.shape[-1]

  def one(a):  # [h, w, K] -> [H, W]
    return jnp.argmax(jax.image.resize(a, (*out_hw, k), "bilinear"), axis=-1).astype(jnp.int32)

  return jax.lax.map(one, lsm, batch_size=min(max(int(resize_batch), 1), lsm.shape[0]))


def load_drn_seg(path: str, num_classes: int = 19, **model_kw):
  """DRNSeg (default DRN-D-105) with the official state_dict at `path` (.pth or .npz)."""
  from flax import nnx  # pylint: disable=import-outside-toplevel
  from jaxvision.models import drn, torch_import  # pylint: disable=import-outside-toplevel
  model = drn.DRNSeg(num_classes, rngs=nnx.Rngs(0), **model_kw)
  if path.endswith(".npz"):
    with np.load(path) as z:
      sd = {k: np.asarray(z[k]) for k in z.files}
  else:
    sd = path
  return torch_import.load_torch_checkpoint(model, sd, naming="drn_seg")


@register("drn_miou")
class DrnMiou(WeightsEvaluator):
  """Cityscapes mIoU of {"pred"} photos against {"label"} trainId maps (see module)."""
  inputs = (("images", "pred"), ("labels", "label"))

  def __init__(self, weights: str = "", num_classes: int = 19, quantize: str = "floor",
               resize_batch: int = 1, model_kw: Optional[Mapping] = None, keys=None,
               logits_fn: Optional[Callable] = None):
    if quantize not in QUANTIZE:
      raise ConfigError(f"evaluator drn_miou: quantize must be one of {QUANTIZE}, got "
                        f"{quantize!r}.")
    self.weights = "given" if logits_fn is not None else find_weights(weights)
    self.num_classes, self.quantize = int(num_classes), quantize
    self.resize_batch, self.model_kw = int(resize_batch), dict(model_kw or {})
    self._logits_fn = logits_fn
    self._graph, self._params = None, None
    self._fns: dict = {}  # out_hw -> jitted (params, images) -> labels
    super().__init__(keys)

  def reset(self):
    self.impl = segmentation.MiouEvaluator(self.num_classes)

  def _segment_fn(self, out_hw: tuple[int, int]) -> Callable:
    if out_hw not in self._fns:
      if self._logits_fn is not None:
        fn = self._logits_fn
        net = lambda params, x: fn(x)
      else:
        from flax import nnx  # pylint: disable=import-outside-toplevel
        if self._params is None:
          self._graph, self._params = nnx.split(
              load_drn_seg(self.weights, self.num_classes, **self.model_kw))
        graph = self._graph
        net = lambda params, x: nnx.merge(graph, params)(x)
      q, rb = self.quantize, self.resize_batch
      self._fns[out_hw] = jax.jit(
          lambda params, images: labels_from_logits(net(params, preprocess(images, q)), out_hw,
                                                    rb))
    return self._fns[out_hw]

  def predict(self, images, out_hw: tuple[int, int]) -> np.ndarray:
    """images [B, h, w, 3] in [0, 1] -> predicted trainIds [B, *out_hw] (int32)."""
    images = jnp.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.shape[1] % 8 or images.shape[2] % 8:
      raise ValueError(f"drn_miou: images must be [B, h, w, 3] with h, w multiples of 8, got "
                       f"{images.shape}.")
    fn = self._segment_fn(tuple(int(s) for s in out_hw))
    return np.asarray(fn(self._params, images))

  def update(self, out, mask):
    if self.off:
      return
    labels = to_numpy(out[self.keys["labels"]])
    images = out[self.keys["images"]]
    if labels.ndim != 3 or labels.shape[0] != np.shape(images)[0]:
      raise ValueError(f"drn_miou: labels must be [B, H, W] trainIds for the {np.shape(images)[0]}"
                       f" images, got {labels.shape}.")
    pred = self.predict(images, labels.shape[1:])
    self.impl.update(labels, pred, mask)

  def result(self, context=None) -> dict[str, float]:
    if self.off:
      return {}
    out = self.impl.result()  # {miou, pixel_acc}, summed over hosts
    iou = segmentation.per_class_iou(allgather_sum(self.impl.conf)) * 100.0
    names = (CITYSCAPES_CLASSES if self.num_classes == len(CITYSCAPES_CLASSES)
             else [str(c) for c in range(self.num_classes)])
    out.update({f"iou_{n}": float(v) for n, v in zip(names, iou)})
    return out
