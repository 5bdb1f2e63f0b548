"""The evaluation protocol the loop drives (adapters for every metric: evaluators/protocol.py).

  ev = make(kind, **options)    # from config.evals.<name>.evaluators.<label>
  ev.update(outputs, mask)      # outputs: {key: np.ndarray [B, ...]} (this process's rows)
  ev.result(context)            # -> {metric: float}; a collective across hosts
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

import numpy as np

from jaxvision.core.errors import ConfigError
from jaxvision.core.registry import LOOP_EVALUATORS


class LoopEvaluator:
  """Base adapter: `inputs` maps the wrapped update()'s positional arguments to output keys."""

  inputs: tuple[tuple[str, str], ...] = ()   # (argument, default output key), in call order
  optional: tuple[tuple[str, str], ...] = ()  # passed when present in the outputs
  factory: Any = None

  def __init__(self, keys: Optional[Mapping[str, str]] = None, **options):
    self.keys = {a: k for a, k in self.inputs + self.optional}
    unknown = sorted(set(keys or {}) - set(self.keys))
    if unknown:
      raise ConfigError(f"evaluator '{type(self).__name__}': unknown keys {unknown}; it reads "
                        f"{sorted(self.keys)}")
    self.keys.update(dict(keys or {}))
    self.options = options
    self.reset()

  def reset(self):
    self.impl = self.factory(**self.options)

  def required_keys(self) -> list[str]:
    return [self.keys[a] for a, _ in self.inputs]

  def update(self, out: Mapping[str, np.ndarray], mask) -> None:
    args = [out[self.keys[a]] for a, _ in self.inputs]
    kw = {a: out[self.keys[a]] for a, _ in self.optional if self.keys[a] in out}
    self.impl.update(*args, **kw, mask=mask)

  def result(self, context: Optional[Mapping] = None) -> dict[str, float]:
    return {k: float(v) for k, v in self.impl.result().items()}


class WeightsEvaluator(LoopEvaluator):
  """An evaluator that needs a user-supplied network file (`self.weights`); weights='off'
  makes it a no-op that reads nothing (its `update`/`result` check `self.off`)."""
  weights: str = ""

  @property
  def off(self) -> bool:
    return self.weights == "off"

  def required_keys(self) -> list[str]:
    return [] if self.off else super().required_keys()


def register(name: str):
  def deco(cls):
    LOOP_EVALUATORS.register(name, cls)
    return cls
  return deco


def make(kind: str, **options) -> LoopEvaluator:
  """Builds the loop evaluator registered as `kind` with its options."""
  cls = LOOP_EVALUATORS.get(kind)
  try:
    return cls(**options)
  except TypeError as e:
    raise ConfigError(f"evaluator '{kind}': bad options {sorted(options)} ({e})") from e


def from_config(evaluators_cfg: Mapping) -> dict[str, LoopEvaluator]:
  """{label: evaluator} from config.evals.<name>.evaluators ({label: {type, **options}})."""
  out = {}
  for label, opts in dict(evaluators_cfg).items():
    opts = dict(opts or {})
    kind = opts.pop("type", label)
    out[label] = make(kind, **opts)
  return out


def check_outputs(evaluators: Mapping[str, LoopEvaluator], output_keys, where: str) -> None:
  """Raises ConfigError when a prediction lacks a key an evaluator reads."""
  for label, ev in evaluators.items():
    missing = [k for k in ev.required_keys() if k not in output_keys]
    if missing:
      raise ConfigError(
          f"{where}: evaluator '{label}' reads output keys {missing} that the prediction does "
          f"not return (it returns {sorted(output_keys)}); set evaluators.{label}.keys to map "
          f"them, or use another predict function")
