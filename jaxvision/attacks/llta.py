"""LLTA (Fang+ AAAI 2022): meta-learned transfer attack over data and model augmentation.

Follows the official code (llta.md §2), batched with correct per-example pairing (equal to
the official code at batch 1, which is the only batch size where the official code is right).
Per outer iteration t, for every example independently:
  γ ← 0.5·1_G, then E rounds of the base-γ search (`search_gamma`, §2.2) on x + δ;
  support S: n_s copies of x + δ with DI resize-pad (prob p_d) and γ + m·u (m ~ Bern(p_m),
  u ~ U[−r, r]^G); query Q: n_q copies, independent draws (`sample_tasks`);
  for each of N tasks, π = n_q distinct support indices, and for j = 1..n_q:
    g_s = ∇L(f(S_x[π_j]; S_γ[π_j])), u_j = Π(α·sign(g_s)), g_q = ∇L(f(Q_x[j] + u_j; Q_γ[j]));
  g = Σ_tasks Σ_j (g_s + g_q) (`meta_gradient`); optionally g ← W_ti * g (depthwise TI, the
  official `ti` switch with its channel-mixing bug fixed, llta.md §9); δ ← Π(δ + β·sign(g))
  (or MI on g).
All N·n_q support copies run as one batch, then all query copies (`tasks_per_batch` chunks
them to bound memory). Models need the `branch_act` hook for the decay factors γ; without it
(G = 0) LLTA keeps its data augmentation and meta step only.
"""
from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxvision.attacks import ops
from jaxvision.attacks.fgsm import _check_prob, _check_ti, check_budget
from jaxvision.attacks.surrogate import Surrogate


@dataclasses.dataclass(frozen=True)
class LLTAConfig:
  """LLTA settings (jit static); defaults are the official CLI defaults (pixel units, [0, 1]).

  eps 16/255; steps T = 10; step_size β (msb) None = eps / steps (1.6/255); inner_step α (msa)
  None = eps; momentum 0 (official) or 1.0 (LLTA+MI, TransferAttack); search_epochs E = 5,
  search_samples S = 5, search_sigma 0.05, gamma_init 0.5, gamma_max 1e5; num_tasks N = 5,
  support_size n_s = 20, query_size n_q = 10; model_aug_prob p_m 0.5, model_aug_range r 0.1,
  data_aug_prob p_d 0.5, resize_rate 1/0.875 (224 -> 256 canvas); ti_kernel / ti_nsig:
  depthwise Gaussian smoothing of the meta gradient (0 = off, official default; 7 / 3 is the
  official switch's kernel); tasks_per_batch: tasks computed at once (None = all N).
  """
  eps: float = 16 / 255
  steps: int = 10
  step_size: float | None = None
  inner_step: float | None = None
  momentum: float = 0.0
  search_epochs: int = 5
  search_samples: int = 5
  search_sigma: float = 0.05
  gamma_init: float = 0.5
  gamma_max: float = 1e5
  num_tasks: int = 5
  support_size: int = 20
  query_size: int = 10
  model_aug_prob: float = 0.5
  model_aug_range: float = 0.1
  data_aug_prob: float = 0.5
  resize_rate: float = 1 / 0.875
  ti_kernel: int = 0
  ti_nsig: float = 3.0
  tasks_per_batch: int | None = None
  clip_min: float = 0.0
  clip_max: float = 1.0

  def __post_init__(self):
    check_budget(self.eps, self.steps, self.step_size, self.momentum, self.clip_min,
                 self.clip_max)
    if self.inner_step is not None and not self.inner_step > 0:
      raise ValueError(f"inner_step must be > 0 (pixel units), got {self.inner_step}.")
    for name in ("model_aug_prob", "data_aug_prob"):
      _check_prob(name, getattr(self, name))
    for name in ("search_samples", "num_tasks", "support_size", "query_size"):
      if getattr(self, name) < 1:
        raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
    if self.search_epochs < 0:
      raise ValueError(f"search_epochs must be >= 0, got {self.search_epochs}.")
    if self.query_size > self.support_size:
      raise ValueError(f"query_size={self.query_size} must be <= support_size="
                       f"{self.support_size} (each task picks query_size distinct supports).")
    if self.search_sigma <= 0 or self.model_aug_range < 0:
      raise ValueError("search_sigma must be > 0 and model_aug_range >= 0.")
    _check_ti(self.ti_kernel)
    if self.resize_rate < 1:
      raise ValueError(f"resize_rate must be >= 1, got {self.resize_rate}.")
    tpb = self.tasks_per_batch
    if tpb is not None and (tpb < 1 or self.num_tasks % tpb):
      raise ValueError(f"tasks_per_batch={tpb} must divide num_tasks={self.num_tasks}.")

  @property
  def alpha(self) -> float:
    return self.eps if self.inner_step is None else self.inner_step

  @property
  def beta(self) -> float:
    return self.eps / self.steps if self.step_size is None else self.step_size


def _model_fns(surrogate: Surrogate, variables):
  """(grad_fn(x [N,...], y [N], gamma [N, G]) -> ∇_x Σ CE [N, ...]) for the decayed surrogate."""
  def loss(x, y, gamma):
    hook = surrogate.decay_hook(gamma) if surrogate.num_gammas else None
    return ops.ce_sum(surrogate.apply(variables, x, hook), y)
  return jax.grad(loss)


def _flat(a):
  """[B, K, ...] -> [B*K, ...] (example-major)."""
  return a.reshape((a.shape[0] * a.shape[1],) + a.shape[2:])


def search_gamma(grad_fn, x: jax.Array, y: jax.Array, gamma: jax.Array, keys: jax.Array,
                 cfg: LLTAConfig) -> jax.Array:
  """Base-γ search (official `optimize_parameter`, E rounds). x: [B, H, W, C]; gamma: [B, G];
  keys: [B]. Each round, per example: Δ_s ~ N(0, σ²)^G, n_s = ‖∇_x L(γ + Δ_s)‖₂,
  d_s = n_s − ‖∇_x L(γ)‖₂, w_s = exp(−d_s)·1[d_s < 0], q = φ_σ(Δ) elementwise,
  Δγ = Σ_s (w_s/q_s)Δ_s / (Σ_s w_s/q_s + 1e−12); γ ← clip(γ + Δγ, 0, gamma_max). w is
  computed as exp(−(d_s − min_s d_s)) (same ratio, no float32 overflow); Δγ = 0 when no
  candidate lowers the gradient norm. All 1 + S gradient norms run as one batch.
  """
  b, g = gamma.shape
  s, sig = cfg.search_samples, cfg.search_sigma
  y_rep = jnp.repeat(y, s + 1)
  x_rep = _flat(jnp.broadcast_to(x[:, None], (b, s + 1) + x.shape[1:]))

  def round_(e, gamma):
    delta = jax.vmap(lambda k: sig * jax.random.normal(k, (s, g)))(ops.fold_in(keys, e))
    q = jnp.exp(-0.5 * (delta / sig) ** 2) / (sig * np.sqrt(2 * np.pi))       # [B, S, G]
    cand = jnp.clip(gamma[:, None] + delta, 0.0, cfg.gamma_max)
    allg = jnp.concatenate([gamma[:, None], cand], axis=1)                    # [B, 1+S, G]
    grads = grad_fn(x_rep, y_rep, _flat(allg))
    norms = jnp.sqrt(jnp.sum(grads.reshape(b, s + 1, -1) ** 2, axis=-1))       # [B, 1+S]
    d = norms[:, 1:] - norms[:, :1]                                           # [B, S]
    dmin = jnp.min(d, axis=1, keepdims=True)
    w = jnp.where(d < 0, jnp.exp(-(d - dmin)), 0.0)
    r = w[..., None] / q
    step = jnp.sum(r * delta, axis=1) / (jnp.sum(r, axis=1) + 1e-12)
    return jnp.clip(gamma + step, 0.0, cfg.gamma_max)

  return jax.lax.fori_loop(0, cfg.search_epochs, round_, gamma)


class TaskSet(NamedTuple):
  """Support/query task sets for one outer iteration (example-major).

  spt_x: [B, n_s, H, W, C]; spt_gamma: [B, n_s, G]; qry_x: [B, n_q, H, W, C];
  qry_gamma: [B, n_q, G]; select: [B, N, n_q] distinct support indices per task.
  """
  spt_x: jax.Array
  spt_gamma: jax.Array
  qry_x: jax.Array
  qry_gamma: jax.Array
  select: jax.Array


def _augment(x, gamma, u, cfg: LLTAConfig):
  """Copies of each example from uniforms u: [B, K, 5 + G] (4 DI, 1 model-aug mask, G offsets):
  DI with prob p_d (one draw per copy) and γ + m·U[−r, r]^G (m ~ Bern(p_m)), clipped."""
  b, k = u.shape[:2]
  copies = _flat(jnp.broadcast_to(x[:, None], (b, k) + x.shape[1:]))
  xs = ops.input_diversity_u(copies, _flat(u[..., :4]), cfg.data_aug_prob, cfg.resize_rate)
  m = u[..., 4:5] < cfg.model_aug_prob
  off = (2.0 * u[..., 5:] - 1.0) * cfg.model_aug_range
  gs = jnp.clip(gamma[:, None] + m * off, 0.0, cfg.gamma_max)
  return xs.reshape((b, k) + x.shape[1:]), gs


def sample_tasks(x: jax.Array, gamma: jax.Array, keys: jax.Array, cfg: LLTAConfig) -> TaskSet:
  """Support (n_s) and query (n_q) sets from x = x + δ [B, H, W, C] (no gradient), base γ
  [B, G], and per-task selections of n_q distinct support copies. keys: [B]; each example
  draws all its uniforms at once (support, query, selection: independent slices)."""
  ns, nq, n, g = cfg.support_size, cfg.query_size, cfg.num_tasks, gamma.shape[1]
  per = 5 + g
  u = jax.vmap(lambda k: jax.random.uniform(k, ((ns + nq) * per + n * ns,)))(keys)
  us = u[:, :ns * per].reshape(-1, ns, per)
  uq = u[:, ns * per:(ns + nq) * per].reshape(-1, nq, per)
  up = u[:, (ns + nq) * per:].reshape(-1, n, ns)
  x = jax.lax.stop_gradient(x)
  sx, sg = _augment(x, gamma, us, cfg)
  qx, qg = _augment(x, gamma, uq, cfg)
  select = jnp.argsort(up, axis=-1)[..., :nq].astype(jnp.int32)  # n_q distinct per task
  return TaskSet(sx, sg, qx, qg, select)


def meta_gradient(grad_fn, tasks: TaskSet, y: jax.Array, cfg: LLTAConfig) -> jax.Array:
  """g = Σ_tasks Σ_j [g_s + g_q] (first-order meta gradient, official accumulation), [B, H, W, C].

  g_s = ∇L(f(S_x[π_j]; S_γ[π_j]), y) at u = 0; u_j = clip(S_x[π_j] + clip(α sign g_s, ±eps),
  lo, hi) − S_x[π_j]; g_q = ∇L(f(Q_x[j] + u_j; Q_γ[j]), y). Query j pairs with the j-th
  selected support copy of the same task and example.
  """
  b, n, nq = tasks.select.shape
  img = tasks.spt_x.shape[2:]
  tpb = cfg.tasks_per_batch or n

  def chunk(sel):                                                  # sel: [B, c, n_q]
    c = sel.shape[1]
    idx = sel.reshape(b, c * nq)
    sx = jnp.take_along_axis(tasks.spt_x, idx.reshape((b, c * nq) + (1,) * len(img)), axis=1)
    sg = jnp.take_along_axis(tasks.spt_gamma, idx[..., None], axis=1)
    qx = jnp.broadcast_to(tasks.qry_x[:, None], (b, c, nq) + img).reshape((b, c * nq) + img)
    qg = jnp.broadcast_to(tasks.qry_gamma[:, None], (b, c, nq) + tasks.qry_gamma.shape[2:])
    qg = qg.reshape(b, c * nq, -1)
    yy = jnp.repeat(y, c * nq)
    sx, sg, qx, qg = _flat(sx), _flat(sg), _flat(qx), _flat(qg)
    gs = grad_fn(sx, yy, sg)
    u = jnp.clip(cfg.alpha * jnp.sign(gs), -cfg.eps, cfg.eps)
    u = jnp.clip(sx + u, cfg.clip_min, cfg.clip_max) - sx
    gq = grad_fn(qx + u, yy, qg)
    return (gs + gq).reshape((b, c * nq) + img).sum(axis=1)

  if tpb == n:
    return chunk(tasks.select)
  sel = jnp.moveaxis(tasks.select.reshape(b, n // tpb, tpb, nq), 1, 0)
  return jnp.sum(jax.lax.map(chunk, sel), axis=0)


def llta_attack(cfg: LLTAConfig, surrogate: Surrogate, variables, x: jax.Array,
                labels: jax.Array, rng: jax.Array) -> jax.Array:
  """LLTA; pure and jittable (cfg, surrogate static). x: [B, H, W, C] in [clip_min, clip_max];
  labels: [B] (officially the surrogate's own predictions, see `predict_labels`); rng: one
  key or [B] keys. Returns x_adv [B, H, W, C] with ‖x_adv − x‖∞ ≤ eps, in range.
  """
  b = x.shape[0]
  keys = ops.example_keys(rng, b)
  grad_fn = _model_fns(surrogate, variables)
  g = surrogate.num_gammas
  x = x.astype(jnp.float32)
  kernel = ops.gaussian_kernel(cfg.ti_kernel, cfg.ti_nsig) if cfg.ti_kernel else None

  def outer(t, carry):
    xa, mom = carry
    kt = ops.split_each(ops.fold_in(keys, t), 2)
    gamma = jnp.full((b, g), cfg.gamma_init, jnp.float32)
    if g and cfg.search_epochs:
      gamma = search_gamma(grad_fn, jax.lax.stop_gradient(xa), labels, gamma, kt[:, 0], cfg)
    tasks = sample_tasks(xa, gamma, kt[:, 1], cfg)
    grad = meta_gradient(grad_fn, tasks, labels, cfg)
    if kernel is not None:
      grad = ops.ti_smooth(grad, kernel)
    mom = ops.momentum_update(mom, grad, cfg.momentum)  # momentum 0: sign(grad), official
    xa = ops.project_linf(xa + cfg.beta * jnp.sign(mom), x, cfg.eps, cfg.clip_min, cfg.clip_max)
    return xa, mom

  xa, _ = jax.lax.fori_loop(0, cfg.steps, outer, (x, jnp.zeros_like(x)))
  return xa
