"""`laconvnet_vl`: the language encoder + LaConvNet as one zoo model (one trainable role).

    model = build("laconvnet_vl", num_answers, rngs=..., vocab_size=V, variant="S", head="rec")
    out = model(image [B,H,W,3] float, tokens [B,L] int32 (0 = PAD), train, rng)

Outputs as `LaConvNet` for the head. The word embedding is a FrozenEmbedding (not trained)
unless freeze_embedding=False; the method loads GloVe into it at the start of a run.
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxvision.methods.laconv.language import LanguageEncoder
from jaxvision.models import common, laconvnet, register_model


class LaConvVL(nnx.Module):
  """LanguageEncoder(vocab_size, embed_dim, hidden=text_dim, n_sa) -> LaConvNet(text_dim, ...).

  Widths format: as LaConvNet (5 stage dims). Other kwargs go to LaConvNet.
  """
  default_input_shape = (416, 416, 3)

  def __init__(self, num_classes: int = 3129, *, rngs: nnx.Rngs,
               widths: Sequence[int] | None = None, vocab_size: int = 0, embed_dim: int = 300,
               text_dim: int = 512, n_sa: int = 1, lang_heads: int = 8, lang_ffn: int | None = None,
               lang_drop: float = 0.1, freeze_embedding: bool = True, width_multiplier: float = 1.0,
               dtype=jnp.float32, **visual):
    del width_multiplier  # sizes come from `variant` / widths
    if not isinstance(vocab_size, int) or vocab_size < 4:
      raise ValueError(f"laconvnet_vl needs vocab_size (from the tokenizer), got {vocab_size!r}.")
    dtype = common.resolve_dtype(dtype)
    self.language = LanguageEncoder(vocab_size, rngs=rngs, embed_dim=embed_dim, hidden=text_dim,
                                    n_sa=n_sa, heads=lang_heads, ffn=lang_ffn, drop=lang_drop,
                                    freeze_embedding=freeze_embedding, dtype=dtype)
    self.visual = laconvnet.LaConvNet(num_classes, rngs=rngs, widths=widths, text_dim=text_dim,
                                      dtype=dtype, **visual)
    self.widths = self.visual.widths

  def __call__(self, image, tokens, train: bool = False, rng=None):
    t, m = self.language(tokens, train=train, rng=None if rng is None
                         else jax.random.fold_in(rng, 1))
    return self.visual(image, t, m, train=train,
                       rng=None if rng is None else jax.random.fold_in(rng, 2))

  @staticmethod
  def default_widths(variant: str = "S", **_) -> list[int]:
    return laconvnet.LaConvNet.default_widths(variant)

  def torch_naming_rules(self) -> dict:
    return {laconvnet.OFFICIAL_NAMING: laconvnet.official_torch_name}

  def load_torch_state_dict(self, src, *, naming: str = "auto", strict: bool = True):
    """The official REC or RES checkpoint (language encoder + trunk + neck + head; build with
    head='rec' for `laconvnet_det` files, head='res' for `laconvnet_seg` files), see
    `laconvnet.load_official_checkpoint`; used by `torch_import.load_torch_checkpoint`."""
    if naming not in ("auto", laconvnet.OFFICIAL_NAMING):
      raise ValueError(f"laconvnet_vl loads naming 'official' only, got {naming!r}.")
    return laconvnet.load_official_checkpoint(self, src, strict=strict)


register_model("laconvnet_vl", LaConvVL)
