"""Quantizer specs and layer rules (frozen dataclasses: jit statics).

A `QuantSpec` says how one tensor is quantized (bits, symmetric or asymmetric,
per-channel or per-tensor, how its range is tracked). A `QuantRule` maps layer
paths (regex over '/'-joined nnx paths, or the tokens '@first' / '@last' for the
first / last quantized layer in call order) to a weight spec and an input
activation spec. The first matching rule wins; a layer no rule matches stays FP.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Optional, Sequence

RANGE_MODES = ("minmax", "ema", "current")


@dataclasses.dataclass(frozen=True)
class QuantSpec:
  """How one tensor is fake-quantized.

  Attributes:
    bits: integer bit width (2..16).
    symmetric: False (default, IntraQ/ZeroQ): asymmetric uniform range [l, u] with
      an integer zero point; True: [-a, a] with a = max|x|, zero point 0.
    per_channel: one range per slice along `axis` (weights: output channels).
    axis: channel axis for per-channel ranges (-1: output channel of HWIO/IO kernels).
    range_mode: 'current' = min/max of the tensor at every forward (weights);
      'minmax' = running min/max over calibration batches; 'ema' = exponential
      moving average of batch min/max (activations, momentum `ema_decay`).
    ema_decay: EMA momentum beta (IntraQ code: 0.9).
    ema_quirk: replicate the official code's per-step bias correction
      v_t = (beta v_{t-1} + (1-beta) m_t) / (1 - beta^t) (bit parity only);
      False: standard EMA, bias corrected at read time.
  """
  bits: int = 4
  symmetric: bool = False
  per_channel: bool = False
  axis: int = -1
  range_mode: str = "ema"
  ema_decay: float = 0.9
  ema_quirk: bool = False

  def __post_init__(self):
    if not isinstance(self.bits, int) or not 2 <= self.bits <= 16:
      raise ValueError(f"QuantSpec.bits must be an int in [2, 16], got {self.bits!r}.")
    if self.range_mode not in RANGE_MODES:
      raise ValueError(f"QuantSpec.range_mode={self.range_mode!r} is not one of {RANGE_MODES}.")
    if not 0.0 <= self.ema_decay < 1.0:
      raise ValueError(f"QuantSpec.ema_decay must be in [0, 1), got {self.ema_decay}.")

  @property
  def qmin(self) -> int:
    return -(2 ** (self.bits - 1))

  @property
  def qmax(self) -> int:
    return 2 ** (self.bits - 1) - 1


def weight_spec(bits: int, *, symmetric: bool = False, per_channel: bool = True) -> QuantSpec:
  """IntraQ weight quantizer: per output channel, min/max of the current weights."""
  return QuantSpec(bits=bits, symmetric=symmetric, per_channel=per_channel, axis=-1,
                   range_mode="current")


def act_spec(bits: int, *, symmetric: bool = False, range_mode: str = "ema",
             ema_decay: float = 0.9, ema_quirk: bool = False) -> QuantSpec:
  """IntraQ activation quantizer: per tensor, EMA of batch min/max during calibration."""
  return QuantSpec(bits=bits, symmetric=symmetric, per_channel=False, range_mode=range_mode,
                   ema_decay=ema_decay, ema_quirk=ema_quirk)


@dataclasses.dataclass(frozen=True)
class QuantRule:
  """Layers whose path matches `pattern` get these quantizers (None = keep FP).

  pattern: a regex matched with `re.fullmatch` against the layer path ('blocks/0/conv1'),
    or '@first' / '@last' (first / last conv-or-linear layer in call order).
  weight: spec for the kernel (bias stays FP).
  act: spec for the layer's input activation.
  """
  pattern: str
  weight: Optional[QuantSpec] = None
  act: Optional[QuantSpec] = None

  def __post_init__(self):
    if self.pattern not in ("@first", "@last"):
      try:
        re.compile(self.pattern)
      except re.error as e:
        raise ValueError(f"QuantRule.pattern {self.pattern!r} is not a valid regex: {e}") from e


def match_rule(rules: Sequence[QuantRule], path: str, order_index: int,
               num_layers: int) -> Optional[QuantRule]:
  """First rule matching layer `path` (call position `order_index` of `num_layers`)."""
  for r in rules:
    if r.pattern == "@first":
      if order_index == 0:
        return r
    elif r.pattern == "@last":
      if order_index == num_layers - 1:
        return r
    elif re.fullmatch(r.pattern, path):
      return r
  return None


def uniform_rules(bits: int, *, act_bits: Optional[int] = None, quantize_input: bool = False,
                  overrides: Sequence[tuple[str, int]] = (), range_mode: str = "ema",
                  ema_quirk: bool = False) -> tuple[QuantRule, ...]:
  """The IntraQ placement: every conv/linear weight at `bits` (first and last included).

  Activations (`act_bits`, default = bits) are quantized at the input of every
  conv/linear except the first layer's input (the network input stays FP unless
  `quantize_input`). `overrides`: optional (regex, bits) pairs for per-layer W/A bits.
  """
  a_bits = bits if act_bits is None else act_bits
  rules = []
  for pattern, b in overrides:
    rules.append(QuantRule(pattern, weight_spec(int(b)),
                           act_spec(int(b), range_mode=range_mode, ema_quirk=ema_quirk)))
  a = act_spec(a_bits, range_mode=range_mode, ema_quirk=ema_quirk)
  if not quantize_input:
    rules.append(QuantRule("@first", weight_spec(bits), None))
  rules.append(QuantRule(".*", weight_spec(bits), a))
  return tuple(rules)
