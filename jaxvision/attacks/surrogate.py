"""The white-box surrogate as the attacks see it: a pure apply function plus its residual layout.

    surrogate, variables = from_nnx(model, mean=MEAN, std=STD)
    logits = surrogate.apply(variables, x)                # x: [B, H, W, C] in [0, 1]
    logits = surrogate.apply(variables, x, branch_act)    # swap the residual-branch ReLUs

`branch_act(h, stage, block) -> h` is the zoo ResNets' optional hook (jaxvision.models.resnet,
resnet_cifar): it replaces the ReLU(s) inside the residual branch of block `block` of stage
`stage`; the ReLU after the addition stays. SGM and LLTA's DecayReLU use it; models without
the hook can still run every attack that does not need it.
"""
from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxvision.attacks.ops import decay_relu


@dataclasses.dataclass(frozen=True)
class Surrogate:
  """A jit-static surrogate description.

  apply: (variables, x [B, H, W, C] in pixel range, branch_act=None) -> logits [B, K], in
    eval mode (BN running statistics), including the model's input normalisation.
  stage_blocks: residual blocks per stage, () when the model has no `branch_act` hook.
  relus_per_block: residual-branch ReLUs per block (1 basic block, 2 bottleneck).
  """
  apply: Callable[..., jax.Array]
  stage_blocks: tuple[int, ...] = ()
  relus_per_block: int = 1

  @property
  def has_hook(self) -> bool:
    return bool(self.stage_blocks)

  @property
  def num_gammas(self) -> int:
    """G: decay factors, one per residual block that is not the first of its stage."""
    return sum(n - 1 for n in self.stage_blocks)

  def gamma_index(self, stage: int, block: int) -> int | None:
    """γ index of (stage, block), stage-major; None for the first block of a stage."""
    if block == 0:
      return None
    return sum(n - 1 for n in self.stage_blocks[:stage]) + block - 1

  def require_hook(self, what: str) -> None:
    if not self.has_hook:
      raise ValueError(f"{what} needs a residual surrogate with the branch_act hook "
                       "(zoo resnet* models); this surrogate has none.")

  def decay_hook(self, gamma: jax.Array) -> Callable:
    """LLTA model augmentation: residual-branch ReLUs of non-first blocks become
    decay_relu(h, gamma[:, g]); gamma: [B, G] per example (bottlenecks get gamma² per branch).
    """
    def hook(h, stage, block):
      g = self.gamma_index(stage, block)
      return jax.nn.relu(h) if g is None else decay_relu(h, gamma[:, g])
    return hook

  def sgm_hook(self, gamma: float) -> Callable:
    """SGM: the residual-branch gradient of non-first blocks is scaled by gamma
    (gamma ** (1 / relus_per_block) on each branch ReLU)."""
    per_relu = float(gamma) ** (1.0 / self.relus_per_block)

    def hook(h, stage, block):
      return jax.nn.relu(h) if block == 0 else decay_relu(h, jnp.asarray(per_relu, h.dtype))
    return hook


def residual_layout(model: nnx.Module) -> tuple[tuple[int, ...], int]:
  """(stage_blocks, relus_per_block) of a zoo ResNet; ((), 1) for models without the hook."""
  from jaxvision.models.resnet import Bottleneck, ResNet
  from jaxvision.models.resnet_cifar import CifarResNet
  if isinstance(model, CifarResNet):
    return (len(model.layer1), len(model.layer2), len(model.layer3)), 1
  if isinstance(model, ResNet):
    blocks = tuple(len(getattr(model, f"layer{s}")) for s in range(1, 5))
    return blocks, 2 if isinstance(model.layer1[0], Bottleneck) else 1
  return (), 1


def from_nnx(model: nnx.Module, mean: Sequence[float] | None = None,
             std: Sequence[float] | None = None, *,
             stage_blocks: Sequence[int] | None = None,
             relus_per_block: int | None = None) -> tuple[Surrogate, Any]:
  """(Surrogate, variables) for an NNX classifier called as `model(x, train=False, ...)`.

  mean, std: the model's input normalisation, applied as (x − mean) / std to pixel-range x
  (None: the model takes pixel-range inputs). stage_blocks / relus_per_block override the
  residual layout for custom models that implement the `branch_act` hook.
  """
  graphdef, variables = nnx.split(model)
  layout, rpb = residual_layout(model)
  if stage_blocks is not None:
    layout = tuple(int(n) for n in stage_blocks)
  if relus_per_block is not None:
    rpb = int(relus_per_block)
  if layout and "branch_act" not in inspect.signature(type(model).__call__).parameters:
    raise ValueError(f"{type(model).__name__} has no branch_act hook; drop stage_blocks.")
  m = None if mean is None else np.asarray(mean, np.float32)
  s = None if std is None else np.asarray(std, np.float32)
  if (m is None) != (s is None):
    raise ValueError("give both mean and std for the surrogate's input normalisation, or neither.")

  def apply(variables, x, branch_act=None):
    net = nnx.merge(graphdef, variables)
    if m is not None:
      x = (x - m) / s
    if branch_act is None:
      return net(x, train=False)
    return net(x, train=False, branch_act=branch_act)

  return Surrogate(apply, layout, rpb), variables


def predict_labels(surrogate: Surrogate, variables, x: jax.Array) -> jax.Array:
  """The surrogate's own predictions [B] (LLTA's default attack labels)."""
  return jnp.argmax(surrogate.apply(variables, x), axis=-1).astype(jnp.int32)
