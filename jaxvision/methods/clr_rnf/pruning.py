"""One-shot CLR-RNF pruning of a model: rank -> select -> build narrow net -> copy weights.

    narrow, result = prune(model, "vgg16", PruneOptions(pr_target=0.86), num_classes=10)

Spec: `shared/papers/clr_rnf.md` §2 (steps 1-4) and §3.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxvision.methods.clr_rnf import archs, ranking, rnf, surgery


@dataclasses.dataclass(frozen=True)
class PruneOptions:
  """Pruning hyperparameters (config.clr_rnf.* in the method).

  pr_target: fraction of ranked weights removed, in [0, 1).
  lam: λ; None = the paper's value for the architecture (ranking.LAMBDA, else 1.0).
  ranking: 'clr' | 'magnitude' (λ=0 ablation) | 'uniform' (every unit at pr_target).
  selection: 'rnf' | 'l1' | 'random' (which filters are kept).
  rnf_fill: RNF overshoot fill, 'official' (CPython set-pop order, spec §9.5) | 'ascending'.
  flops_mode: 'measured' (f from the architecture) | 'table' (official constants) | None
    (the architecture's default: 'table' for resnet50, else 'measured').
  inherit_bn: copy BN (and VGG conv bias / classifier) instead of re-initialising them.
  residual_select: ResNet-50 only, 'code' | 'aligned' (spec §9.4).
  seed: seeds random selection and the fresh init of re-initialised params.
  random_exclude_last: official `random` quirk (the last filter can never be picked).
  """
  pr_target: float = 0.5
  lam: Optional[float] = None
  ranking: str = "clr"
  selection: str = "rnf"
  flops_mode: Optional[str] = None
  inherit_bn: bool = True
  residual_select: str = "code"
  seed: int = 0
  random_exclude_last: bool = False
  rnf_fill: str = "official"

  def validate(self):
    if not 0.0 <= float(self.pr_target) < 1.0:
      raise ValueError(f"clr_rnf.pr_target must be in [0, 1), got {self.pr_target}.")
    if self.ranking not in ranking.MODES:
      raise ValueError(f"clr_rnf.ranking={self.ranking!r}; use one of {ranking.MODES}.")
    if self.selection not in rnf.SELECTIONS:
      raise ValueError(f"clr_rnf.selection={self.selection!r}; use one of {rnf.SELECTIONS}.")
    if self.rnf_fill not in rnf.FILLS:
      raise ValueError(f"clr_rnf.rnf_fill={self.rnf_fill!r}; use one of {rnf.FILLS}.")
    if self.flops_mode is not None and self.flops_mode not in archs.FLOPS_MODES:
      raise ValueError(f"clr_rnf.flops_mode={self.flops_mode!r}; use one of "
                       f"{archs.FLOPS_MODES}.")
    if self.residual_select not in ("code", "aligned"):
      raise ValueError(f"clr_rnf.residual_select={self.residual_select!r}; use 'code' or "
                       "'aligned'.")
    if self.lam is not None and float(self.lam) < 0:
      raise ValueError(f"clr_rnf.lam must be >= 0 (or None for the paper value), got {self.lam}.")
    return self


@dataclasses.dataclass
class PruneResult:
  """What pruning decided (host values, JSON-able via `to_meta`)."""
  units: list[str]
  num_filters: list[int]
  keep: list[int]
  rates: list[float]
  f: list[float]
  lam: float
  tau: float
  plan: surgery.Plan

  def to_meta(self) -> dict:
    return {"widths": _jsonable(self.plan.widths), "kept": self.plan.kept(),
            "units": {u: {"n": n, "keep": k, "rate": r, "f": f}
                      for u, n, k, r, f in zip(self.units, self.num_filters, self.keep,
                                               self.rates, self.f)},
            "lam": self.lam, "tau": self.tau if np.isfinite(self.tau) else None}


def _jsonable(x):
  if isinstance(x, (list, tuple)):
    return [_jsonable(v) for v in x]
  if isinstance(x, dict):
    return {k: _jsonable(v) for k, v in x.items()}
  return int(x) if isinstance(x, (np.integer,)) else x


def default_lambda(model_name: str) -> float:
  """λ of the paper for the architecture (issue #3: 'usually 1' for others)."""
  return float(ranking.LAMBDA.get(model_name, 1.0))


def make_selector(opts: PruneOptions) -> archs.Selector:
  rng = np.random.default_rng(opts.seed)

  def select(filters, m, name):
    del name
    return rnf.select(filters, int(m), opts.selection, rng, opts.random_exclude_last,
                      opts.rnf_fill)

  return select


def plan_pruning(model: nnx.Module, model_name: str, opts: PruneOptions,
                 image_size: int = 32) -> PruneResult:
  """Scores, cross-layer ranking and filter selection (no new model yet)."""
  opts.validate()
  arch = archs.get_arch(model_name)
  mode = opts.flops_mode or archs.DEFAULT_FLOPS_MODE.get(model_name, "measured")
  units = arch.units(model, mode, image_size)
  lam = default_lambda(arch.lam_key) if opts.lam is None else float(opts.lam)
  rk = ranking.cross_layer_ranking([u.weight for u in units], [u.num_filters for u in units],
                                   [u.f for u in units], lam, float(opts.pr_target),
                                   opts.ranking)
  keep = {u.name: k for u, k in zip(units, rk.keep)}
  index = {u.name: i for i, u in enumerate(units)}
  plan = arch.plan(model, keep, make_selector(opts), inherit_bn=opts.inherit_bn,
                   residual_select=opts.residual_select, seed=opts.seed,
                   keep_fn=lambda n, u: rk.keep_of(n, index[u]))
  return PruneResult([u.name for u in units], [u.num_filters for u in units], list(rk.keep),
                     [float(r) for r in rk.rates], [u.f for u in units], lam, float(rk.tau),
                     plan)


def build_fn(model_name: str, num_classes: int, seed: int = 0, **model_kwargs):
  """widths -> narrow model builder for `surgery.narrow_model`."""
  from jaxvision import models

  def build(widths):
    return models.build(model_name, num_classes, rngs=nnx.Rngs(seed), widths=widths,
                        **model_kwargs)

  return build


def prune(model: nnx.Module, model_name: str, opts: PruneOptions, num_classes: int,
          image_size: int = 32, **model_kwargs) -> tuple[nnx.Module, PruneResult]:
  """Full one-shot pruning. Returns (narrow model with inherited weights, result).

  model_kwargs: the kwargs the original was built with (e.g. width_multiplier).
  """
  res = plan_pruning(model, model_name, opts, image_size)
  narrow = surgery.narrow_model(model, res.plan,
                                build_fn(model_name, num_classes, opts.seed, **model_kwargs),
                                opts.seed)
  return narrow, res


def random_model(model_name: str, num_classes: int, seed: int = 0, **model_kwargs) -> nnx.Module:
  """A model with deterministic numpy-random weights and BN statistics (tests, benchmarks).

  Built abstractly and filled on the host, so no random-init program is compiled.
  Kernels ~ N(0, 2/fan_in); BN scale, var ~ U(0.5, 1.5); BN bias, mean, biases ~ N(0, 0.1).
  """
  from jaxvision import models
  abstract = nnx.eval_shape(lambda: models.build(model_name, num_classes, rngs=nnx.Rngs(0),
                                                 **model_kwargs))
  graphdef, st = nnx.split(abstract)
  rng = np.random.default_rng(seed)
  flat = surgery.flatten(nnx.to_pure_dict(st))
  out = {}
  for path, a in flat.items():
    leaf, shape = path.rsplit("/", 1)[-1], tuple(a.shape)
    if leaf == "kernel":
      fan_in = int(np.prod(shape[:-1]))
      v = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
    elif leaf in ("scale", "var"):
      v = rng.uniform(0.5, 1.5, shape)
    else:
      v = rng.standard_normal(shape) * 0.1
    out[path] = jnp.asarray(v.astype(a.dtype))
  nnx.replace_by_pure_dict(st, surgery.unflatten_into(nnx.to_pure_dict(st), out))
  return nnx.merge(graphdef, st)
