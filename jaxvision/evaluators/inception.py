"""Inception-v3 pool3 features for FID/KID (the pytorch-fid network), in JAX.

Source: gcc.md §5 (FID with pytorch-fid weights, 2048-d pool3 features) and
the pytorch-fid `FIDInceptionA/C/E_1/E_2` blocks (TF-Inception port: the
average pools exclude padding; Mixed_7c pools with a 3x3 max pool).
Input images: x [B, H, W, 3] float in [0, 1] (quantise fakes to uint8 first),
bilinearly resized (half-pixel centres, no antialias = torch
`interpolate(align_corners=False)`) to 299x299 and scaled to [-1, 1].
Every conv is conv (no bias) + BatchNorm (eps 1e-3, inference) + ReLU.
Output: [B, 2048] (global average pool of Mixed_7c).

No weights ship with jaxvision and none can be downloaded here: supply
pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` (or an `.npz` holding
its state_dict arrays under the same names) via `weights_path=` or the
environment variable JAXVISION_INCEPTION_WEIGHTS.
"""
from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np

WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
               + WEIGHTS_FILE)
ENV_VAR = "JAXVISION_INCEPTION_WEIGHTS"
BN_EPS = 1e-3


class _Net:
  """Runs the architecture over a {torch_name: array} table.

  mode 'apply' reads weights (checking shapes); mode 'init' creates random
  ones (tests / shape tracing).
  """

  def __init__(self, params=None, rng: np.random.Generator | None = None):
    self.params = {} if params is None else params
    self.rng = rng

  def conv(self, name, x, cout, k, stride=1, pad=(0, 0)):
    kh, kw = (k, k) if isinstance(k, int) else k
    cin = x.shape[-1]
    wkey = f"{name}.conv.weight"
    if self.rng is not None:
      self.params[wkey] = (self.rng.standard_normal((cout, cin, kh, kw))
                           * np.sqrt(2.0 / (cin * kh * kw))).astype(np.float32)
      self.params[f"{name}.bn.weight"] = np.ones(cout, np.float32)
      self.params[f"{name}.bn.bias"] = np.zeros(cout, np.float32)
      self.params[f"{name}.bn.running_mean"] = np.zeros(cout, np.float32)
      self.params[f"{name}.bn.running_var"] = np.ones(cout, np.float32)
    w = self.params[wkey]
    if tuple(w.shape) != (cout, cin, kh, kw):
      raise ValueError(f"weight '{wkey}' has shape {tuple(w.shape)}, expected "
                       f"{(cout, cin, kh, kw)}: not the pytorch-fid Inception-v3 weights")
    w = jnp.transpose(jnp.asarray(w, jnp.float32), (2, 3, 1, 0))  # OIHW -> HWIO
    y = jax.lax.conv_general_dilated(x, w, (stride, stride), [(pad[0], pad[0]), (pad[1], pad[1])],
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    g = jnp.asarray(self.params[f"{name}.bn.weight"], jnp.float32)
    b = jnp.asarray(self.params[f"{name}.bn.bias"], jnp.float32)
    mu = jnp.asarray(self.params[f"{name}.bn.running_mean"], jnp.float32)
    var = jnp.asarray(self.params[f"{name}.bn.running_var"], jnp.float32)
    scale = g / jnp.sqrt(var + BN_EPS)
    return jax.nn.relu(y * scale + (b - mu * scale))


def _max_pool(x, k=3, s=2, p=0):
  pads = [(0, 0), (p, p), (p, p), (0, 0)]
  return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, k, k, 1), (1, s, s, 1), pads)


def _avg_pool_excl_pad(x):
  """3x3, stride 1, pad 1, count_include_pad=False."""
  pads = [(0, 0), (1, 1), (1, 1), (0, 0)]
  s = jax.lax.reduce_window(x, 0.0, jax.lax.add, (1, 3, 3, 1), (1, 1, 1, 1), pads)
  n = jax.lax.reduce_window(jnp.ones_like(x[:1, :, :, :1]), 0.0, jax.lax.add, (1, 3, 3, 1),
                            (1, 1, 1, 1), pads)
  return s / n


def _block_a(n, name, x, pool_features):
  b1 = n.conv(f"{name}.branch1x1", x, 64, 1)
  b5 = n.conv(f"{name}.branch5x5_1", x, 48, 1)
  b5 = n.conv(f"{name}.branch5x5_2", b5, 64, 5, pad=(2, 2))
  b3 = n.conv(f"{name}.branch3x3dbl_1", x, 64, 1)
  b3 = n.conv(f"{name}.branch3x3dbl_2", b3, 96, 3, pad=(1, 1))
  b3 = n.conv(f"{name}.branch3x3dbl_3", b3, 96, 3, pad=(1, 1))
  bp = n.conv(f"{name}.branch_pool", _avg_pool_excl_pad(x), pool_features, 1)
  return jnp.concatenate([b1, b5, b3, bp], -1)


def _block_b(n, name, x):
  b3 = n.conv(f"{name}.branch3x3", x, 384, 3, stride=2)
  bd = n.conv(f"{name}.branch3x3dbl_1", x, 64, 1)
  bd = n.conv(f"{name}.branch3x3dbl_2", bd, 96, 3, pad=(1, 1))
  bd = n.conv(f"{name}.branch3x3dbl_3", bd, 96, 3, stride=2)
  return jnp.concatenate([b3, bd, _max_pool(x)], -1)


def _block_c(n, name, x, c7):
  b1 = n.conv(f"{name}.branch1x1", x, 192, 1)
  b7 = n.conv(f"{name}.branch7x7_1", x, c7, 1)
  b7 = n.conv(f"{name}.branch7x7_2", b7, c7, (1, 7), pad=(0, 3))
  b7 = n.conv(f"{name}.branch7x7_3", b7, 192, (7, 1), pad=(3, 0))
  bd = n.conv(f"{name}.branch7x7dbl_1", x, c7, 1)
  bd = n.conv(f"{name}.branch7x7dbl_2", bd, c7, (7, 1), pad=(3, 0))
  bd = n.conv(f"{name}.branch7x7dbl_3", bd, c7, (1, 7), pad=(0, 3))
  bd = n.conv(f"{name}.branch7x7dbl_4", bd, c7, (7, 1), pad=(3, 0))
  bd = n.conv(f"{name}.branch7x7dbl_5", bd, 192, (1, 7), pad=(0, 3))
  bp = n.conv(f"{name}.branch_pool", _avg_pool_excl_pad(x), 192, 1)
  return jnp.concatenate([b1, b7, bd, bp], -1)


def _block_d(n, name, x):
  b3 = n.conv(f"{name}.branch3x3_1", x, 192, 1)
  b3 = n.conv(f"{name}.branch3x3_2", b3, 320, 3, stride=2)
  b7 = n.conv(f"{name}.branch7x7x3_1", x, 192, 1)
  b7 = n.conv(f"{name}.branch7x7x3_2", b7, 192, (1, 7), pad=(0, 3))
  b7 = n.conv(f"{name}.branch7x7x3_3", b7, 192, (7, 1), pad=(3, 0))
  b7 = n.conv(f"{name}.branch7x7x3_4", b7, 192, 3, stride=2)
  return jnp.concatenate([b3, b7, _max_pool(x)], -1)


def _block_e(n, name, x, max_pool_branch):
  b1 = n.conv(f"{name}.branch1x1", x, 320, 1)
  b3 = n.conv(f"{name}.branch3x3_1", x, 384, 1)
  b3 = jnp.concatenate([n.conv(f"{name}.branch3x3_2a", b3, 384, (1, 3), pad=(0, 1)),
                        n.conv(f"{name}.branch3x3_2b", b3, 384, (3, 1), pad=(1, 0))], -1)
  bd = n.conv(f"{name}.branch3x3dbl_1", x, 448, 1)
  bd = n.conv(f"{name}.branch3x3dbl_2", bd, 384, 3, pad=(1, 1))
  bd = jnp.concatenate([n.conv(f"{name}.branch3x3dbl_3a", bd, 384, (1, 3), pad=(0, 1)),
                        n.conv(f"{name}.branch3x3dbl_3b", bd, 384, (3, 1), pad=(1, 0))], -1)
  pooled = _max_pool(x, 3, 1, 1) if max_pool_branch else _avg_pool_excl_pad(x)
  bp = n.conv(f"{name}.branch_pool", pooled, 192, 1)
  return jnp.concatenate([b1, b3, bd, bp], -1)


def _forward(n: _Net, x, resize: bool = True):
  if x.ndim != 4 or x.shape[-1] != 3:
    raise ValueError(f"images must be [B, H, W, 3] in [0, 1], got shape {x.shape}")
  x = x.astype(jnp.float32)
  if resize:
    x = jax.image.resize(x, (x.shape[0], 299, 299, 3), "bilinear", antialias=False)
  elif min(x.shape[1:3]) < 75:
    raise ValueError(f"Inception-v3 needs images of at least 75x75, got {x.shape[1:3]}")
  x = 2.0 * x - 1.0
  x = n.conv("Conv2d_1a_3x3", x, 32, 3, stride=2)
  x = n.conv("Conv2d_2a_3x3", x, 32, 3)
  x = n.conv("Conv2d_2b_3x3", x, 64, 3, pad=(1, 1))
  x = _max_pool(x)
  x = n.conv("Conv2d_3b_1x1", x, 80, 1)
  x = n.conv("Conv2d_4a_3x3", x, 192, 3)
  x = _max_pool(x)
  x = _block_a(n, "Mixed_5b", x, 32)
  x = _block_a(n, "Mixed_5c", x, 64)
  x = _block_a(n, "Mixed_5d", x, 64)
  x = _block_b(n, "Mixed_6a", x)
  for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
    x = _block_c(n, name, x, c7)
  x = _block_d(n, "Mixed_7a", x)
  x = _block_e(n, "Mixed_7b", x, max_pool_branch=False)
  x = _block_e(n, "Mixed_7c", x, max_pool_branch=True)
  return jnp.mean(x, axis=(1, 2))


def random_inception_params(seed: int = 0) -> dict[str, np.ndarray]:
  """Randomly initialised weights with the pytorch-fid names and shapes
  (for tests and shape checks only; FID needs the real weights)."""
  n = _Net(rng=np.random.default_rng(seed))
  # Tracing only (no compile, no compute): shapes are static, params are
  # created as numpy side effects of the trace.
  jax.eval_shape(lambda x: _forward(n, x, resize=False), jax.ShapeDtypeStruct((1, 75, 75, 3),
                                                                              jnp.float32))
  return n.params


def find_weights(weights_path: str | None = None, how: str = "weights_path=...") -> str:
  """The Inception weights file to read: `weights_path`, else $JAXVISION_INCEPTION_WEIGHTS.

  Raises FileNotFoundError naming the file to supply (and `how` to pass it) when none exists.
  """
  path = os.path.expanduser(weights_path or os.environ.get(ENV_VAR, ""))
  if not path or not os.path.isfile(path):
    where = f" (looked for '{path}')" if path else ""
    raise FileNotFoundError(
        f"Inception-v3 FID weights not found{where}. Supply pytorch-fid's "
        f"'{WEIGHTS_FILE}' ({WEIGHTS_URL}), or an .npz of its state_dict, via "
        f"{how} or the environment variable {ENV_VAR}.")
  return path


def load_inception_weights(weights_path: str | None = None) -> dict[str, np.ndarray]:
  """Reads the pytorch-fid Inception weights (.pth via torch, or .npz).

  Raises FileNotFoundError naming the file to supply when none is found.
  """
  path = find_weights(weights_path)
  if path.endswith(".npz"):
    with np.load(path) as z:
      return {k: np.asarray(z[k]) for k in z.files}
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError(f"reading '{path}' needs torch; install it or convert the state_dict to "
                      ".npz (np.savez(out, **{k: v.numpy() for k, v in sd.items()}))") from e
  sd = torch.load(path, map_location="cpu", weights_only=True)
  return {k: v.numpy() for k, v in sd.items()}


class InceptionFeatureExtractor:
  """`extractor(images [B, H, W, 3] in [0, 1]) -> [B, 2048]` pool3 features.

  Args:
    weights_path: pytorch-fid weights (.pth or .npz); default from
      $JAXVISION_INCEPTION_WEIGHTS. Missing -> FileNotFoundError naming
      the file.
    params: an already loaded {name: array} table (overrides weights_path).
    resize: resize to 299x299 (the FID protocol); False keeps the input size.
    jit: compile the forward (default; compiling takes tens of seconds on a
      CPU, so small one-off calls may prefer jit=False).
  """

  def __init__(self, weights_path: str | None = None, params=None, resize: bool = True,
               jit: bool = True):
    raw = params if params is not None else load_inception_weights(weights_path)
    self.params = {k: jnp.asarray(v, jnp.float32) for k, v in raw.items()
                   if not k.startswith("fc.")}
    self.resize = resize
    fn = lambda p, x: _forward(_Net(p), x, resize)  # noqa: E731
    self._fn = jax.jit(fn) if jit else fn

  def __call__(self, images) -> jax.Array:
    return self._fn(self.params, jnp.asarray(images))
