"""JAX nets of the solution and one jitted trainer for them (Flax NNX).

* ResNet-18: the zoo's `resnet18` (jaxvision.models), small widths on CPU.
* ResNet-9 (DeepWisdom's, autodl.md §6): prep conv3x3-64+BN+CELU(0.075);
  layer1 = conv128+maxpool2+BN+CELU + residual (2x conv+BN+CELU); layer2 =
  conv256+maxpool+BN+CELU; layer3 = layer1-type at 512; global max pool;
  bias-free fc. Registered in the zoo as `autodl_resnet9`. x: [B, H, W, C].
* VideoNet: MC3-style 3-D ResNet: stem conv3d 3x7x7 stride (1,2,2); stage 1 full
  3x3x3 convs, stages 2-4 1x3x3 ("no temporal") convs with stride (1,2,2);
  average pool; bias-free fc. blocks=(2,2,2,2) and width 1 is MC3-18.
  x: [B, T, H, W, C].
* TextCNN: embedding -> parallel 1-D convs (kernel sizes) -> ReLU -> max over
  time -> fc. tokens: [B, L] int (0 = padding).
* ThinResNet34: the VGGVox "thin ResNet-34" (Xie et al. 2019; DeepWisdom/PASA_NJU's
  thin_resnet34.h5): 7x7 conv + BN + ReLU, 2x2 max pool, four stages of bottlenecks
  (1x1, 3x3, 1x1) with filters (48,48,96), (96,96,128), (128,128,256), (256,256,512),
  blocks (2,3,3,3) as in the Keras model, first block of stages 3-5 strided 2, (3,1)/(2,1)
  max pool, a conv spanning the remaining frequency rows (7x1 for 257 bins) to 512, time
  aggregation (average, or GhostVLAD), a 512-d ReLU embedding and a bias-free classifier.
  BatchNorm epsilon 1e-3 (Keras' default, so imported Keras weights give the Keras outputs).
  x: [B, F, T, 1] (frequency rows, time columns).
"""
from __future__ import annotations

import time
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jaxvision.models import common, register_model

CELU_ALPHA = 0.075


def _celu(x):
  return jax.nn.celu(x, CELU_ALPHA)


class _ConvBN(nnx.Module):
  def __init__(self, cin, cout, *, pool: bool, rngs, dtype):
    self.conv = common.conv(cin, cout, 3, dtype=dtype, rngs=rngs)
    self.bn = common.bn(cout, dtype=dtype, rngs=rngs)
    self.pool = pool

  def __call__(self, x, train):
    x = self.conv(x)
    if self.pool:
      x = common.max_pool(x, 2, 2)
    return _celu(self.bn(x, use_running_average=not train))


class ResNet9(nnx.Module):
  """DeepWisdom's ResNet-9 (module doc). widths: [prep, l1, l2, l3] (64, 128, 256, 512).

  Call: `model(x, train) -> logits`; x: [B, H, W, C]; logits: [B, num_classes].
  """
  default_input_shape = (32, 32, 3)

  def __init__(self, num_classes: int = 10, *, rngs: nnx.Rngs, widths: Sequence[int] | None = None,
               width_multiplier: float = 1.0, dtype=jnp.float32, in_channels: int = 3):
    dtype = common.resolve_dtype(dtype)
    widths = common.check_widths("autodl_resnet9", widths, 4, "[prep, layer1, layer2, layer3]")
    if widths is None:
      widths = self.default_widths(width_multiplier)
    self.widths, self.dtype, self.num_classes = list(widths), dtype, num_classes
    w0, w1, w2, w3 = widths
    kw = dict(rngs=rngs, dtype=dtype)
    self.prep = _ConvBN(in_channels, w0, pool=False, **kw)
    self.layer1 = _ConvBN(w0, w1, pool=True, **kw)
    self.res1 = nnx.List([_ConvBN(w1, w1, pool=False, **kw), _ConvBN(w1, w1, pool=False, **kw)])
    self.layer2 = _ConvBN(w1, w2, pool=True, **kw)
    self.layer3 = _ConvBN(w2, w3, pool=True, **kw)
    self.res3 = nnx.List([_ConvBN(w3, w3, pool=False, **kw), _ConvBN(w3, w3, pool=False, **kw)])
    self.fc = nnx.Linear(w3, num_classes, use_bias=False, dtype=dtype, param_dtype=jnp.float32,
                         rngs=rngs)

  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    x = self.prep(x.astype(self.dtype), train)
    x = self.layer1(x, train)
    r = x
    for m in self.res1:
      r = m(r, train)
    x = self.layer2(x + r, train)
    x = self.layer3(x, train)
    r = x
    for m in self.res3:
      r = m(r, train)
    x = x + r
    return self.fc(jnp.max(x, axis=(1, 2)))

  @staticmethod
  def default_widths(width_multiplier: float = 1.0, **_) -> list[int]:
    return [common.scale_width(w, width_multiplier) for w in (64, 128, 256, 512)]


class _Block3d(nnx.Module):
  def __init__(self, cin, cout, kt: int, stride_hw: int, *, rngs, dtype):
    k = (kt, 3, 3)
    pad = ((kt // 2, kt // 2), (1, 1), (1, 1))
    mk = lambda ci, co, s: nnx.Conv(ci, co, k, strides=(1, s, s), padding=pad, use_bias=False,
                                    kernel_init=common.kaiming_fan_out, dtype=dtype,
                                    param_dtype=jnp.float32, rngs=rngs)
    self.conv1, self.bn1 = mk(cin, cout, stride_hw), common.bn(cout, rngs=rngs, dtype=dtype)
    self.conv2, self.bn2 = mk(cout, cout, 1), common.bn(cout, rngs=rngs, dtype=dtype)
    self.has_proj = stride_hw != 1 or cin != cout
    if self.has_proj:
      self.proj = nnx.Conv(cin, cout, (1, 1, 1), strides=(1, stride_hw, stride_hw),
                           use_bias=False, dtype=dtype, param_dtype=jnp.float32, rngs=rngs)
      self.proj_bn = common.bn(cout, rngs=rngs, dtype=dtype)

  def __call__(self, x, train):
    ura = not train
    y = nnx.relu(self.bn1(self.conv1(x), use_running_average=ura))
    y = self.bn2(self.conv2(y), use_running_average=ura)
    sc = self.proj_bn(self.proj(x), use_running_average=ura) if self.has_proj else x
    return nnx.relu(y + sc)


class VideoNet(nnx.Module):
  """MC3-style video ResNet (module doc). widths: [stem, s1, s2, s3, s4].

  Call: `model(x, train) -> logits`; x: [B, T, H, W, C]; logits: [B, num_classes].
  """
  default_input_shape = (8, 32, 32, 3)

  def __init__(self, num_classes: int, *, rngs: nnx.Rngs, widths: Sequence[int] | None = None,
               width_multiplier: float = 1.0, blocks: Sequence[int] = (2, 2, 2, 2),
               in_channels: int = 3, dtype=jnp.float32, fc_bias: bool = False):
    dtype = common.resolve_dtype(dtype)
    widths = list(widths or self.default_widths(width_multiplier))
    self.widths, self.dtype = widths, dtype
    self.blocks, self.in_channels = tuple(int(b) for b in blocks), in_channels
    self.stem = nnx.Conv(in_channels, widths[0], (3, 7, 7), strides=(1, 2, 2),
                         padding=((1, 1), (3, 3), (3, 3)), use_bias=False,
                         kernel_init=common.kaiming_fan_out, dtype=dtype,
                         param_dtype=jnp.float32, rngs=rngs)
    self.stem_bn = common.bn(widths[0], rngs=rngs, dtype=dtype)
    layers, cin = [], widths[0]
    for s in range(4):
      for b in range(blocks[s]):
        layers.append(_Block3d(cin, widths[s + 1], 3 if s == 0 else 1,
                               2 if (s > 0 and b == 0) else 1, rngs=rngs, dtype=dtype))
        cin = widths[s + 1]
    self.layers = nnx.List(layers)
    self.fc = nnx.Linear(cin, num_classes, use_bias=fc_bias, dtype=dtype,
                         param_dtype=jnp.float32, rngs=rngs)

  def torch_naming_rules(self) -> dict:
    """torchvision `mc3_18` names: stem.{0,1}, layer{s}.{b}.conv{1,2}.{0,1},
    layer{s}.{b}.downsample.{0,1}, fc (used by jaxvision.models.torch_import)."""
    where = [(s, b) for s in range(4) for b in range(self.blocks[s])]
    sub = {"conv1": "conv1.0", "bn1": "conv1.1", "conv2": "conv2.0", "bn2": "conv2.1",
           "proj": "downsample.0", "proj_bn": "downsample.1"}

    def name(path: str) -> str:
      top = {"stem": "stem.0", "stem_bn": "stem.1", "fc": "fc"}
      if path in top:
        return top[path]
      _, i, layer = path.split("/")
      s, b = where[int(i)]
      return f"layer{s + 1}.{b}.{sub[layer]}"
    return {"torchvision": name}

  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    x = nnx.relu(self.stem_bn(self.stem(x.astype(self.dtype)), use_running_average=not train))
    for blk in self.layers:
      x = blk(x, train)
    return self.fc(jnp.mean(x, axis=(1, 2, 3)))

  @staticmethod
  def default_widths(width_multiplier: float = 1.0, **_) -> list[int]:
    return [common.scale_width(w, width_multiplier) for w in (64, 64, 128, 256, 512)]


class TextCNN(nnx.Module):
  """TextCNN (module doc). Call: `model(tokens [B, L] int, train) -> logits [B, K]`."""

  def __init__(self, num_classes: int, *, vocab_size: int, rngs: nnx.Rngs, embed_dim: int = 64,
               filters: int = 32, kernel_sizes: Sequence[int] = (3, 4, 5), dtype=jnp.float32):
    self.embed = nnx.Embed(vocab_size + 1, embed_dim, param_dtype=jnp.float32, rngs=rngs)
    self.convs = nnx.List([nnx.Conv(embed_dim, filters, (k,), padding="SAME", dtype=dtype,
                                    param_dtype=jnp.float32, rngs=rngs) for k in kernel_sizes])
    self.fc = nnx.Linear(filters * len(kernel_sizes), num_classes, dtype=dtype,
                         param_dtype=jnp.float32, rngs=rngs)
    self.dtype = common.resolve_dtype(dtype)

  def __call__(self, tokens: jax.Array, train: bool = False) -> jax.Array:
    del train
    e = self.embed(tokens).astype(self.dtype)
    mask = (tokens > 0)[..., None]
    feats = [jnp.max(jnp.where(mask, nnx.relu(c(e)), 0.0), axis=1) for c in self.convs]
    return self.fc(jnp.concatenate(feats, axis=-1))


# ------------------------------------------------------------------ ThinResNet-34 (speech)
TR34_STAGES = ((48, 48, 96), (96, 96, 128), (128, 128, 256), (256, 256, 512))
TR34_BLOCKS = (2, 3, 3, 3)  # DeepWisdom's tr34_bb.resnet_2D_v1 (the Keras thin_resnet34.h5)
KERAS_BN_EPSILON = 1e-3     # keras.layers.BatchNormalization's default


def _tr_bn(n: int, eps: float, **kw) -> nnx.BatchNorm:
  """common.bn with the Keras epsilon (momentum 0.9 as elsewhere in the solution)."""
  return nnx.BatchNorm(n, momentum=0.9, epsilon=eps, param_dtype=jnp.float32, **kw)


def tr34_freq_rows(n_freq: int) -> int:
  """Frequency rows left after the trunk: 2x2/2 pool (floor), three stride-2 1x1 convs
  (ceil), then the (3,1)/(2,1) valid max pool. 257 bins -> 7."""
  h = n_freq // 2
  for _ in range(3):
    h = -(-h // 2)
  return (h - 3) // 2 + 1 if h >= 3 else 0


class _TRBlock(nnx.Module):
  """Keras conv_block_2D / identity_block_2D: 1x1 (stride) - 3x3 - 1x1, BN after each,
  ReLU between; a 1x1 (stride) + BN projection on the first block of a stage."""

  def __init__(self, cin, filters, stride: int, proj: bool, *, rngs, dtype,
               eps: float = KERAS_BN_EPSILON):
    f1, f2, f3 = filters
    kw = dict(dtype=dtype, rngs=rngs)
    self.conv1 = common.conv(cin, f1, 1, stride=stride, padding=0, **kw)
    self.bn1 = _tr_bn(f1, eps, **kw)
    self.conv2, self.bn2 = common.conv(f1, f2, 3, **kw), _tr_bn(f2, eps, **kw)
    self.conv3, self.bn3 = common.conv(f2, f3, 1, padding=0, **kw), _tr_bn(f3, eps, **kw)
    self.has_proj = proj
    if proj:
      self.proj = common.conv(cin, f3, 1, stride=stride, padding=0, **kw)
      self.proj_bn = _tr_bn(f3, eps, **kw)

  def __call__(self, x, train):
    ura = not train
    y = nnx.relu(self.bn1(self.conv1(x), use_running_average=ura))
    y = nnx.relu(self.bn2(self.conv2(y), use_running_average=ura))
    y = self.bn3(self.conv3(y), use_running_average=ura)
    sc = self.proj_bn(self.proj(x), use_running_average=ura) if self.has_proj else x
    return nnx.relu(y + sc)


class ThinResNet34(nnx.Module):
  """VGGVox thin ResNet-34 speech classifier (module doc).

  widths (14): [stem] + 3 filters per stage x 4 + [embedding] (default 64, the stage
  filters above, 512; `width_multiplier` scales them all). `n_freq`: input frequency rows
  (the head's conv spans what the trunk leaves of them: 7 rows for 257 bins, as in
  VGGVox); needs n_freq >= 34. aggregation: 'avg' (mean over time) or 'gvlad'
  (GhostVLAD with `vlad_clusters` + `ghost_clusters`: soft-assign each time step to
  K+G learned centres, keep the K non-ghost residual sums, L2-normalise per cluster as
  Keras' K.l2_normalize and flatten). bn_epsilon: 1e-3 as in Keras (the imported
  weights need it). Call: `model(x, train) -> logits`; x: [B, n_freq, T, 1] (T >= 2);
  logits: [B, num_classes].
  """
  default_input_shape = (257, 250, 1)

  def __init__(self, num_classes: int, *, rngs: nnx.Rngs, n_freq: int = 257,
               widths: Sequence[int] | None = None, width_multiplier: float = 1.0,
               blocks: Sequence[int] = TR34_BLOCKS, aggregation: str = "avg",
               vlad_clusters: int = 8, ghost_clusters: int = 2, in_channels: int = 1,
               dtype=jnp.float32, bn_epsilon: float = KERAS_BN_EPSILON):
    dtype = common.resolve_dtype(dtype)
    widths = common.check_widths("thin_resnet34", widths, 14,
                                 "[stem] + 3 filters per stage x 4 + [embedding]")
    if widths is None:
      widths = self.default_widths(width_multiplier)
    rows = tr34_freq_rows(n_freq)
    if rows < 1:
      raise ValueError(f"ThinResNet34 needs n_freq >= 34 frequency rows, got {n_freq}; "
                       "raise speech.tr34_n_mels")
    if aggregation not in ("avg", "gvlad"):
      raise ValueError(f"unknown aggregation {aggregation!r}; use 'avg' or 'gvlad'")
    self.widths, self.dtype, self.num_classes = list(widths), dtype, num_classes
    self.n_freq, self.rows, self.aggregation = n_freq, rows, aggregation
    self.blocks = tuple(int(b) for b in blocks)
    self.bn_epsilon = float(bn_epsilon)
    kw = dict(dtype=dtype, rngs=rngs)
    stem, emb = widths[0], widths[-1]
    self.conv1 = common.conv(in_channels, stem, 7, **kw)
    self.bn1 = _tr_bn(stem, bn_epsilon, **kw)
    layers, cin = [], stem
    for s in range(4):
      f = widths[1 + 3 * s: 4 + 3 * s]
      for b in range(self.blocks[s]):
        layers.append(_TRBlock(cin, f, 2 if (s > 0 and b == 0) else 1, b == 0, eps=bn_epsilon,
                               **kw))
        cin = f[2]
    self.layers = nnx.List(layers)
    head = lambda co: nnx.Conv(cin, co, (rows, 1), padding="VALID", use_bias=True,
                               kernel_init=common.kaiming_fan_out, dtype=dtype,
                               param_dtype=jnp.float32, rngs=rngs)
    self.x_fc = head(emb)
    feat = emb
    if aggregation == "gvlad":
      self.k_centers = vlad_clusters
      self.assign = head(vlad_clusters + ghost_clusters)
      self.centers = nnx.Param(jax.random.normal(rngs.params(), (vlad_clusters + ghost_clusters,
                                                                 emb)) * 0.1)
      feat = vlad_clusters * emb
    self.fc6 = nnx.Linear(feat, emb, dtype=dtype, param_dtype=jnp.float32, rngs=rngs)
    self.fc = nnx.Linear(emb, num_classes, use_bias=False, dtype=dtype, param_dtype=jnp.float32,
                         rngs=rngs)

  @staticmethod
  def default_widths(width_multiplier: float = 1.0, **_) -> list[int]:
    base = [64] + [f for st in TR34_STAGES for f in st] + [512]
    return [common.scale_width(w, width_multiplier) for w in base]

  def embed(self, x: jax.Array, train: bool = False) -> jax.Array:
    """x: [B, n_freq, T, 1] -> the ReLU embedding [B, emb]."""
    if x.shape[1] != self.n_freq:
      raise ValueError(f"ThinResNet34 built for {self.n_freq} frequency rows got input "
                       f"{x.shape}; x must be [B, n_freq, T, 1]")
    x = nnx.relu(self.bn1(self.conv1(x.astype(self.dtype)), use_running_average=not train))
    x = common.max_pool(x, 2, 2)
    for blk in self.layers:
      x = blk(x, train)
    x = nnx.max_pool(x, (3, 1), strides=(2, 1), padding="VALID")
    h = nnx.relu(self.x_fc(x))[:, 0]                       # [B, T', emb]
    if self.aggregation == "avg":
      g = jnp.mean(h, axis=1)
    else:
      a = jax.nn.softmax(self.assign(x)[:, 0].astype(jnp.float32), axis=-1)  # [B, T', K+G]
      c = self.centers.get_value()
      res = jnp.einsum("btk,btd->bkd", a, h) - a.sum(1)[..., None] * c[None]
      res = res[:, :self.k_centers]
      # K.l2_normalize: x / sqrt(max(|x|^2, 1e-12)) (a near-empty cluster stays small)
      res = res * jax.lax.rsqrt(jnp.maximum(jnp.sum(res * res, axis=-1, keepdims=True), 1e-12))
      g = res.reshape(res.shape[0], -1).astype(self.dtype)
    return nnx.relu(self.fc6(g))

  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    return self.fc(self.embed(x, train))


register_model("autodl_resnet9", ResNet9)


# ------------------------------------------------------------------ trainer
def _loss(logits, y, multilabel, tau: float):
  """Softmax CE on normalised targets, or (multilabel) class-balanced BCE:
  w = y/clip(p+) + (1−y)/clip(p−) with p± the batch's positive/negative rate per
  class (clipped to [.03, .97]). `multilabel` may be a traced bool (one compile)."""
  z = logits.astype(jnp.float32) / tau
  p_pos = jnp.clip(jnp.mean(y, axis=0), 0.03, 0.97)
  w = y / p_pos + (1.0 - y) / (1.0 - p_pos)
  bce = jnp.mean(w * optax.sigmoid_binary_cross_entropy(z, y)) / 2.0
  t = y / jnp.maximum(y.sum(-1, keepdims=True), 1e-6)
  ce = jnp.mean(optax.softmax_cross_entropy(z, t))
  return jnp.where(multilabel, bce, ce)


def frozen_mask(state, frozen: Sequence[str]) -> list[bool]:
  """Per leaf of `state` (jax.tree.leaves order): is it under one of the `frozen`
  module paths? Paths join the state's dict keys with '/'."""
  out = []
  for kp, _ in jax.tree_util.tree_flatten_with_path(state)[0]:
    path = "/".join(str(k.key) for k in kp if isinstance(k, jax.tree_util.DictKey))
    out.append(any(path == f or path.startswith(f + "/") for f in frozen))
  return out


class NetTrainer:
  """SGD-Nesterov (or Adam/RMSprop) trainer of an NNX classifier on host arrays.

  fit(x, y, deadline, max_steps): steps on random batches until either limit;
  the lr follows DeepWisdom's warm-up lr(e) = lr·(1 + (m−1)·min(e, 5)/5)/m, m = 2,
  with e the fractional epoch. predict(x) -> probabilities [n, K] (softmax of
  logits/τ, or sigmoid when multilabel).

  frozen: module paths ('layers/3/conv1', 'centers': `nnx.state` paths joined by '/')
  whose params and BatchNorm statistics stay fixed (Keras 2.2.4 `trainable = False`:
  a frozen BN still normalises with batch statistics in training but updates nothing).
  """

  def __init__(self, model: nnx.Module, *, multilabel: bool, lr: float, momentum: float = 0.9,
               weight_decay: float = 0.0, tau: float = 1.0, optimizer: str = "sgd",
               steps_per_epoch: int = 30, batch_size: int = 32, seed: int = 0,
               augment=None, frozen: Sequence[str] = ()):
    self.gdef, self.params, self.rest = nnx.split(model, nnx.Param, ...)
    self.frozen = tuple(frozen)
    fp, fr = frozen_mask(self.params, self.frozen), frozen_mask(self.rest, self.frozen)
    self.n_frozen = sum(fp) + sum(fr)
    self.multilabel, self.tau, self.lr = multilabel, tau, lr
    self.steps_per_epoch, self.batch_size = steps_per_epoch, batch_size
    self.augment = augment
    if optimizer == "sgd":
      tx = optax.chain(optax.add_decayed_weights(weight_decay),
                       optax.trace(decay=momentum, nesterov=True))
    elif optimizer == "rmsprop":
      tx = optax.chain(optax.add_decayed_weights(weight_decay), optax.scale_by_rms())
    elif optimizer == "adam":
      tx = optax.chain(optax.add_decayed_weights(weight_decay), optax.scale_by_adam())
    else:
      raise ValueError(f"unknown optimizer {optimizer!r}; use sgd, rmsprop or adam")
    self.tx = tx
    self.opt_state = tx.init(self.params)
    self.steps = 0
    self.seed = seed
    self.rng = np.random.default_rng(seed)
    gdef = self.gdef

    def step(params, rest, opt_state, x, y, lr, ml):
      def objective(p):
        m = nnx.merge(gdef, p, rest, copy=True)
        loss = _loss(m(x, train=True), y, ml, tau)
        return loss, nnx.state(m, nnx.Not(nnx.Param))
      (loss, new_rest), g = jax.value_and_grad(objective, has_aux=True)(params)
      upd, opt_state = tx.update(g, opt_state, params)
      flat, tdef = jax.tree.flatten(params)
      params = jax.tree.unflatten(tdef, [p if f else p - lr * u for p, u, f in
                                         zip(flat, jax.tree.leaves(upd), fp)])
      if any(fr):  # frozen BN statistics keep their values
        new, rdef = jax.tree.flatten(new_rest)
        new_rest = jax.tree.unflatten(rdef, [o if f else n for o, n, f in
                                             zip(jax.tree.leaves(rest), new, fr)])
      return params, new_rest, opt_state, loss

    def predict(params, rest, x, ml):
      m = nnx.merge(gdef, params, rest, copy=True)
      z = m(x, train=False).astype(jnp.float32) / tau
      return jnp.where(ml, jax.nn.sigmoid(z), jax.nn.softmax(z, axis=-1))

    self._step = jax.jit(step, donate_argnums=(0, 2))
    self._predict = jax.jit(predict)
    self.last_loss = float("nan")

  def reset(self, model: nnx.Module, seed: int):
    """Restarts from `model` (same structure; fresh init) reusing the compiled steps."""
    _, self.params, self.rest = nnx.split(model, nnx.Param, ...)
    self.opt_state = self.tx.init(self.params)
    self.steps, self.seed = 0, seed
    self.rng = np.random.default_rng(seed)

  def warmup(self, x_shape: tuple, num_classes: int, dtype=np.float32, predict_batch: int = 64):
    """Compiles the train and predict steps on zeros of one example shape, then
    restores the initial state (used in Model.__init__, which is not charged)."""
    keep = jax.tree.map(jnp.copy, (self.params, self.rest, self.opt_state))
    x = np.zeros((self.batch_size, *x_shape), dtype)
    y = np.zeros((self.batch_size, num_classes), np.float32)
    y[:, 0] = 1.0
    self.fit(x, y, max_steps=1)
    self.predict(np.zeros((predict_batch, *x_shape), dtype), predict_batch)
    self.params, self.rest, self.opt_state = keep
    self.steps = 0
    self.rng = np.random.default_rng(self.seed)

  @property
  def epoch(self) -> float:
    return self.steps / self.steps_per_epoch

  def current_lr(self) -> float:
    m = 2.0
    return self.lr / m * (1.0 + (m - 1.0) * min(self.epoch, 5.0) / 5.0)

  def fit(self, x: np.ndarray, y: np.ndarray, *, deadline: float | None = None,
          max_steps: int | None = None, min_steps: int = 1) -> int:
    """Trains on (x [n, ...], y [n, K]); returns the number of steps taken."""
    n, done = len(x), 0
    b = min(self.batch_size, n)
    while True:
      if max_steps is not None and done >= max_steps:
        break
      if done >= min_steps and deadline is not None and time.time() >= deadline:
        break
      idx = self.rng.choice(n, size=b, replace=n < b)
      xb = x[idx]
      if self.augment is not None:
        xb = self.augment(xb, self.rng)
      self.params, self.rest, self.opt_state, loss = self._step(
          self.params, self.rest, self.opt_state, jnp.asarray(xb), jnp.asarray(y[idx]),
          jnp.float32(self.current_lr()), jnp.bool_(self.multilabel))
      self.last_loss = float(loss)  # blocks: the time check sees finished steps
      self.steps += 1
      done += 1
    return done

  def predict(self, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
    out = []
    for i in range(0, len(x), batch_size):
      xb = x[i:i + batch_size]
      pad = batch_size - len(xb)
      if pad:  # one compiled shape
        xb = np.concatenate([xb, np.repeat(xb[-1:], pad, axis=0)])
      p = self._predict(self.params, self.rest, jnp.asarray(xb), jnp.bool_(self.multilabel))
      out.append(np.asarray(p)[:batch_size - pad])
    return np.concatenate(out).astype(np.float64)
