"""Shared tiny LFPNet for the LFPNet tests: one model, one compiled forward per process."""
import functools

import jax
import numpy as np
from flax import nnx

from jaxvision.models.lfpnet import DEFAULT_WIDTHS, LFPNet

# width/8, but the pooled 1x1 branches (rppm, aspp, ppm) keep 2 channels per GN group so that
# GroupNorm on 1x1 maps stays well conditioned (and defined in PyTorch).
WIDTHS = [max(1, v // 8) for v in DEFAULT_WIDTHS]
WIDTHS[2] = WIDTHS[3] = WIDTHS[9] = 64
BLOCKS = (2, 1, 1, 1)
S = 32
BATCH = 2


def build(share_backbone=True, seed=0, context_head=True, dtype="float32", **overrides):
  """The tiny LFPNet with random weights (eager init); `overrides`: other LFPNet kwargs."""
  kw = dict(widths=WIDTHS, blocks=BLOCKS) | overrides
  return LFPNet(rngs=nnx.Rngs(seed), share_backbone=share_backbone, context_head=context_head,
                dtype=dtype, **kw)


def build_abstract(share_backbone=True, context_head=True, dtype="float32"):
  """`build`'s structure with abstract (shape-only) variables, no init compiled or run: for a
  model whose every variable is then loaded (e.g. from a checkpoint)."""
  return nnx.eval_shape(lambda: build(share_backbone, context_head=context_head, dtype=dtype))


@functools.lru_cache(maxsize=None)
def _jitted(share_backbone, context_head, dtype):
  graphdef, _ = nnx.split(build_abstract(share_backbone, context_head, dtype))
  return jax.jit(lambda state, x, xc, raw: nnx.merge(graphdef, state)(x, xc, raw))


def apply(model, x, xc, raw):
  """model(x, xc, raw) for a model built by `build`, compiled once per structure."""
  f = _jitted(model.share_backbone, model.ctx_head1 is not None, str(model.dtype))
  return f(nnx.state(model), x, xc, raw)


@functools.lru_cache(maxsize=None)
def tiny():
  """(model, apply(x, x_ctx, raw)) for the shared test model."""
  m = build()
  return m, functools.partial(apply, m)


def random_inputs(seed=0, batch=BATCH, s=S):
  """Encoded random inputs with a real trimap: (x, x_ctx, raw, trimap) as numpy."""
  from jaxvision.methods.lfpnet.encoding import encode
  rng = np.random.default_rng(seed)
  xs, xcs, raws, tris = [], [], [], []
  for _ in range(batch):
    img = rng.integers(0, 256, (2 * s, 2 * s, 3), dtype=np.uint8)
    tri = np.zeros((2 * s, 2 * s), np.uint8)
    tri[:, s:] = 255
    tri[:, s - 6 - rng.integers(0, 4):s + 6] = 128
    xc, _ = encode(img, tri)
    x, raw = encode(img[s // 2:3 * s // 2, s // 2:3 * s // 2], tri[s // 2:3 * s // 2,
                                                                    s // 2:3 * s // 2])
    xs.append(x), xcs.append(xc), raws.append(raw), tris.append(tri[s // 2:3 * s // 2,
                                                                  s // 2:3 * s // 2])
  return np.stack(xs), np.stack(xcs), np.stack(raws), np.stack(tris)
