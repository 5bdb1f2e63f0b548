"""DCL memory: two class queues of hard keys, class prototypes, momentum key encoder (dcl.md §2.3).

All functions are pure and jittable; the state is a plain dict (it lives in the train state's
`extras`):
    {"queue_real": [K + slack, D], "queue_fake": [K + slack, D], "ptr_real": int32 [],
     "ptr_fake": int32 [], "proto_real": [D], "proto_fake": [D]}
A queue is a ring of K rows (the oldest rows are overwritten first: dequeue); an enqueue of n
rows writes rows [ptr, ptr + n) and advances ptr by n mod K; the `slack` rows past K absorb the
overrun, as in the official code (all K + slack rows act as negatives).
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from jaxvision.losses.contrastive import l2_normalize


@dataclasses.dataclass(frozen=True)
class QueueConfig:
  """size: K; slack: extra rows (official 128); dim: embedding size; hard: keys enqueued per
  class and shard (official `threshold` 5); shards: data-parallel shards that select their own
  hard keys (official: one per GPU, then all-gathered); proto_momentum: prototype EMA (0.9)."""
  size: int = 32768
  slack: int = 128
  dim: int = 100
  hard: int = 5
  shards: int = 1
  proto_momentum: float = 0.9

  @property
  def enqueue_rows(self) -> int:
    return self.hard * self.shards


def check_queue_config(cfg: QueueConfig, global_batch: int) -> None:
  """Start-up checks (one clear ValueError each)."""
  if cfg.size < 1 or cfg.dim < 1 or cfg.hard < 1 or cfg.shards < 1:
    raise ValueError(f"queue size, dim, hard and shards must be >= 1; got {cfg}.")
  if global_batch % cfg.shards:
    raise ValueError(f"global batch {global_batch} is not divisible by the {cfg.shards} data "
                     "shards; choose a batch size that is a multiple of the device count.")
  if cfg.size % global_batch:
    raise ValueError(f"queue size {cfg.size} is not divisible by the global batch "
                     f"{global_batch}; set dcl.queue_size to a multiple of the batch size "
                     f"(e.g. {max(1, cfg.size // global_batch) * global_batch}).")
  per_shard = global_batch // cfg.shards
  if cfg.hard > per_shard:
    raise ValueError(f"dcl.hard_keys={cfg.hard} exceeds the per-shard batch {per_shard}; "
                     "lower hard_keys or raise the batch size.")
  if cfg.enqueue_rows > cfg.slack or cfg.enqueue_rows > cfg.size:
    raise ValueError(f"an enqueue writes hard_keys * shards = {cfg.enqueue_rows} rows, more than "
                     f"the queue slack {cfg.slack} or size {cfg.size}; raise dcl.queue_slack.")


def init_memory(rng: jax.Array, cfg: QueueConfig) -> dict:
  """Random unit-norm queues and prototypes, pointers at 0."""
  k = jax.random.split(rng, 4)
  rows = cfg.size + cfg.slack
  return {
      "queue_real": l2_normalize(jax.random.normal(k[0], (rows, cfg.dim))),
      "queue_fake": l2_normalize(jax.random.normal(k[1], (rows, cfg.dim))),
      "ptr_real": jnp.zeros((), jnp.int32), "ptr_fake": jnp.zeros((), jnp.int32),
      "proto_real": l2_normalize(jax.random.normal(k[2], (cfg.dim,))),
      "proto_fake": l2_normalize(jax.random.normal(k[3], (cfg.dim,))),
  }


def enqueue(queue: jax.Array, ptr: jax.Array, rows: jax.Array, valid: jax.Array,
            size: int) -> tuple[jax.Array, jax.Array]:
  """Writes rows [n, D] at [ptr, ptr + n) (rows with valid False keep the old content) and
  returns (queue, (ptr + n) mod size). queue: [size + slack, D] with slack >= n."""
  n = rows.shape[0]
  if n > queue.shape[0] - size:
    raise ValueError(f"enqueue of {n} rows exceeds the queue slack {queue.shape[0] - size}.")
  old = jax.lax.dynamic_slice_in_dim(queue, ptr, n, axis=0)
  new = jnp.where(valid[:, None], rows.astype(queue.dtype), old)
  return jax.lax.dynamic_update_slice_in_dim(queue, new, ptr, axis=0), (ptr + n) % size


def update_prototype(proto: jax.Array, keys: jax.Array, select: jax.Array,
                     momentum: float = 0.9) -> jax.Array:
  """proto <- m proto + (1 - m) mean(keys[select]); unchanged when nothing is selected.
  No re-normalisation and no gradient (as in the official code)."""
  sel = select.astype(jnp.float32)
  n = jnp.sum(sel)
  mean = jnp.sum(keys.astype(jnp.float32) * sel[:, None], 0) / jnp.maximum(n, 1.0)
  return jax.lax.stop_gradient(jnp.where(n > 0, momentum * proto + (1 - momentum) * mean, proto))


def select_hard(keys: jax.Array, labels: jax.Array, cls: int, prototype: jax.Array, n: int,
                shards: int = 1) -> tuple[jax.Array, jax.Array, jax.Array]:
  """The n keys of class `cls` most similar to `prototype` (the other class's), per shard.

  keys: [B, D]; labels: [B]; the batch is split into `shards` contiguous slices (how the global
  batch is laid out over the "data" axis), each picks its own top-n. Returns (rows [shards*n,
  D], valid [shards*n] — False where a shard had fewer than n keys of the class, indices
  [shards*n] into the batch)."""
  b = keys.shape[0]
  per = b // shards
  scores = jnp.where(labels == cls, keys.astype(jnp.float32) @ prototype.astype(jnp.float32),
                     -jnp.inf).reshape(shards, per)
  top, idx = jax.lax.top_k(scores, n)
  idx = (idx + jnp.arange(shards)[:, None] * per).reshape(-1)
  return keys[idx], jnp.isfinite(top).reshape(-1), idx


def update_memory(mem: dict, keys: jax.Array, labels: jax.Array, cfg: QueueConfig) -> dict:
  """One DCL memory step (before the logits): prototypes EMA with this batch's keys, then the
  hard fakes (most real-like, by k.proto_real) enter the fake queue and the hard reals (most
  fake-like, by k.proto_fake) the real queue. keys: [B, D] (no gradient); labels: [B]."""
  keys = jax.lax.stop_gradient(keys)
  p_real = update_prototype(mem["proto_real"], keys, labels == 0, cfg.proto_momentum)
  p_fake = update_prototype(mem["proto_fake"], keys, labels == 1, cfg.proto_momentum)
  f_rows, f_ok, _ = select_hard(keys, labels, 1, p_real, cfg.hard, cfg.shards)
  r_rows, r_ok, _ = select_hard(keys, labels, 0, p_fake, cfg.hard, cfg.shards)
  qf, pf = enqueue(mem["queue_fake"], mem["ptr_fake"], f_rows, f_ok, cfg.size)
  qr, pr = enqueue(mem["queue_real"], mem["ptr_real"], r_rows, r_ok, cfg.size)
  return {"queue_real": qr, "queue_fake": qf, "ptr_real": pr, "ptr_fake": pf,
          "proto_real": p_real, "proto_fake": p_fake}


def momentum_update(key_params, query_params, m: float = 0.999):
  """theta_k <- m theta_k + (1 - m) theta_q, leaf by leaf (params only; no gradient)."""
  return jax.tree.map(lambda k, q: jax.lax.stop_gradient(m * k + (1.0 - m) * q.astype(k.dtype)),
                      key_params, query_params)
