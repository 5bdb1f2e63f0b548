"""DCL network (backbone + 1x1 feature squeeze) and the weighted objective (dcl.md §2.1, §2.5).

    net = DCLNet(backbone, rngs=nnx.Rngs(0))      # backbone: .features(x, train), .head(f, train)
    out = net(x, train=True)                      # {"logits", "embedding", "fmap"}
    w = loss_weights(epoch, ObjectiveConfig())    # CE only for the warm-up epochs
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from jaxvision.losses.contrastive import l2_normalize


class DCLNet(nnx.Module):
  """A classifier backbone plus DCL's embedding head ("feature_squeeze").

  `backbone` must expose `features(x, train) -> [B, h, w, C]` and `head(fmap, train) ->
  logits` (e.g. jaxvision EfficientNet). The embedding is a 1x1 conv C -> embed_channels with
  bias on the feature map, flattened to [B, h*w*embed_channels] and L2-normalised: official
  embed_channels 1 gives dimension h*w (100 for B4 at 299x299); small inputs (a 3x3 map at
  72 px) can keep more channels so the contrastive losses have more than h*w dimensions.
  Call: `net(x, train) -> {"logits": [B, classes], "embedding": [B, h*w*embed_channels]
  (float32, unit norm), "fmap": [B, h, w, C]}`.
  """

  def __init__(self, backbone: nnx.Module, *, rngs: nnx.Rngs, channels: int | None = None,
               embed_channels: int = 1):
    for attr in ("features", "head"):
      if not callable(getattr(backbone, attr, None)):
        raise TypeError(f"DCLNet needs a backbone with .features and .head; "
                        f"{type(backbone).__name__} has no .{attr}.")
    if channels is None:
      channels = backbone.widths[-1]
    if embed_channels < 1:
      raise ValueError(f"DCLNet: embed_channels must be >= 1 (official 1), got {embed_channels}.")
    self.backbone = backbone
    self.squeeze = nnx.Conv(channels, embed_channels, kernel_size=(1, 1), use_bias=True,
                            dtype=getattr(backbone, "dtype", jnp.float32),
                            param_dtype=jnp.float32, rngs=rngs)

  def __call__(self, x: jax.Array, train: bool = False) -> dict:
    fmap = self.backbone.features(x, train)
    emb = self.squeeze(fmap).reshape(fmap.shape[0], -1)
    return {"logits": self.backbone.head(fmap, train), "embedding": l2_normalize(emb),
            "fmap": fmap}


@dataclasses.dataclass(frozen=True)
class ObjectiveConfig:
  """L = ce_weight CE + inter_weight L_inter + intra_weight (L_intra_fake + intra_real_weight
  L_intra_real) after `ce_only_epochs`; before, L = CE. Official: 0.5, 0.5, 0.05, 0.01, 2
  (alpha 0.5 on CE and on L_dcl = L_inter + 0.1 L_intra). Ablations set a weight to 0."""
  ce_weight: float = 0.5
  inter_weight: float = 0.5
  intra_weight: float = 0.05
  intra_real_weight: float = 0.01
  ce_only_epochs: int = 2
  temperature: float = 0.07

  def __post_init__(self):
    for f in ("ce_weight", "inter_weight", "intra_weight", "intra_real_weight"):
      if getattr(self, f) < 0:
        raise ValueError(f"dcl.{f} must be >= 0, got {getattr(self, f)}.")
    if self.temperature <= 0:
      raise ValueError(f"dcl.temperature must be > 0, got {self.temperature}.")
    if self.ce_only_epochs < 0:
      raise ValueError(f"dcl.ce_only_epochs must be >= 0, got {self.ce_only_epochs}.")


def loss_weights(epoch: jax.Array | int, cfg: ObjectiveConfig) -> dict[str, jax.Array]:
  """{"ce", "inter", "intra_fake", "intra_real"} weights at 0-based `epoch` (traced is fine)."""
  warm = jnp.asarray(epoch) < cfg.ce_only_epochs
  on = lambda v: jnp.where(warm, 0.0, v)
  return {"ce": jnp.where(warm, 1.0, cfg.ce_weight), "inter": on(cfg.inter_weight),
          "intra_fake": on(cfg.intra_weight),
          "intra_real": on(cfg.intra_weight * cfg.intra_real_weight)}


def combine(terms: dict[str, jax.Array], weights: dict[str, jax.Array]) -> jax.Array:
  """sum_k weights[k] * terms[k] over the weights' keys (terms may hold more)."""
  return sum(weights[k] * terms[k].astype(jnp.float32) for k in weights)


class DCLModel(DCLNet):
  """DCLNet built from a registered backbone (zoo name "dcl_net").

  Kwargs: backbone (a zoo name with .features/.head, default 'tf_efficientnet_b4'),
  embed_channels (the squeeze's output channels, official 1), then the backbone's own kwargs
  (width_multiplier, depth_multiplier, dtype, dropout, ...). Widths are the backbone's.
  Call: see DCLNet.
  """
  default_input_shape = (299, 299, 3)

  def __init__(self, num_classes: int = 2, *, rngs: nnx.Rngs, widths=None,
               backbone: str = "tf_efficientnet_b4", embed_channels: int = 1, **kw):
    from jaxvision import models  # pylint: disable=import-outside-toplevel
    bb = models.build(backbone, num_classes, rngs=rngs, widths=widths, **kw)
    super().__init__(bb, rngs=rngs, embed_channels=embed_channels)
    self.widths = list(bb.widths)

  def torch_naming_rules(self) -> dict:
    """PyTorch names: the backbone's namings (squeeze -> 'feature_squeeze') and 'dcl_official'
    (TFace DCL checkpoints: encoder_q.encoder.<timm>, encoder_q.fc, encoder_q.feature_squeeze;
    load with strict=False, the key encoder and the unused timm classifier stay behind)."""
    inner = self.backbone.torch_naming_rules()

    def wrap(rule, top=""):
      def fn(path):
        if path == "squeeze":
          return top + "feature_squeeze"
        sub = path[len("backbone/"):]
        if top and sub == "fc":
          return top + "fc"
        return top + ("encoder." if top else "") + rule(sub)
      return fn

    out = {name: wrap(rule) for name, rule in inner.items()}
    if "timm" in inner:
      out["dcl_official"] = wrap(inner["timm"], "encoder_q.")
    return out

  @staticmethod
  def default_widths(backbone: str = "tf_efficientnet_b4", embed_channels: int = 1,
                     **kw) -> list:
    del embed_channels
    from jaxvision import models  # pylint: disable=import-outside-toplevel
    return models.default_widths(backbone, **kw)


def _register():
  from jaxvision.core.registry import MODELS  # pylint: disable=import-outside-toplevel
  from jaxvision.models import register_model  # pylint: disable=import-outside-toplevel
  if "dcl_net" not in MODELS.names():
    register_model("dcl_net", DCLModel)


_register()
