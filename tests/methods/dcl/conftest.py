"""Shared tiny DCL backbone (features: one stride-4 conv; head: pool + linear)."""
import pytest
from flax import nnx


class TinyBackbone(nnx.Module):
  """The interface DCLNet needs: features(x, train) -> [B, H/4, W/4, 8], head -> [B, 2]."""

  def __init__(self, rngs):
    self.conv = nnx.Conv(3, 8, (3, 3), strides=(4, 4), rngs=rngs)
    self.fc = nnx.Linear(8, 2, rngs=rngs)
    self.widths = [8]

  def features(self, x, train=False):
    return nnx.relu(self.conv(x))

  def head(self, f, train=False):
    return self.fc(f.mean((1, 2)))


@pytest.fixture(scope="session")
def tiny_backbone():
  return TinyBackbone
