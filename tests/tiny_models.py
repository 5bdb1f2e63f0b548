"""Tiny NNX models shared by the tests (spec §8 "CPU-testable" sizes).

Importable from any test as `import tiny_models` (tests/conftest.py puts tests/ on sys.path).
"""
import jax.numpy as jnp
from flax import nnx


class TinyBNCNN(nnx.Module):
  """conv3x3(3->8)+BN+ReLU -> conv3x3 s2 (8->16)+BN+ReLU -> GAP -> Linear(16->10).
  The IntraQ spec §8 teacher. x: [B, H, W, 3] -> logits [B, 10]."""

  def __init__(self, rngs):
    self.c1 = nnx.Conv(3, 8, (3, 3), use_bias=False, rngs=rngs)
    self.b1 = nnx.BatchNorm(8, rngs=rngs)
    self.c2 = nnx.Conv(8, 16, (3, 3), strides=2, use_bias=False, rngs=rngs)
    self.b2 = nnx.BatchNorm(16, rngs=rngs)
    self.fc = nnx.Linear(16, 10, rngs=rngs)

  def __call__(self, x, train=False):
    x = nnx.relu(self.b1(self.c1(x), use_running_average=not train))
    x = nnx.relu(self.b2(self.c2(x), use_running_average=not train))
    return self.fc(x.mean((1, 2)))


class TinySparseCNN(nnx.Module):
  """OptG spec §8: two 3x3 convs (8, 16), GAP, bias-free 1x1 'fc' to 10 classes.
  `conv2_bias` adds a bias (which must never be sparsified). x: [B, H, W, 3] -> [B, 10]."""

  def __init__(self, rngs, conv2_bias: bool = False):
    self.conv1 = nnx.Conv(3, 8, (3, 3), use_bias=False, rngs=rngs)
    self.bn1 = nnx.BatchNorm(8, rngs=rngs)
    self.conv2 = nnx.Conv(8, 16, (3, 3), use_bias=conv2_bias, rngs=rngs)
    self.fc = nnx.Conv(16, 10, (1, 1), use_bias=False, rngs=rngs)

  def __call__(self, x, train=True):
    x = nnx.relu(self.bn1(self.conv1(x), use_running_average=not train))
    x = nnx.relu(self.conv2(x))
    return self.fc(jnp.mean(x, axis=(1, 2), keepdims=True))[:, 0, 0, :]
