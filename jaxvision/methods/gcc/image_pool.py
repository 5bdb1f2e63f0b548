"""History pool of generated images for the CycleGAN discriminators (pool size 50), as a pure,
jit-friendly pytree (pytorch-CycleGAN `ImagePool` semantics).

    pool = init_pool(50, (256, 256, 3))
    pool, fakes_for_d = pool_query(pool, fakes, key)

Per image, in batch order: while the pool is not full the image is stored and returned;
afterwards, with probability 1/2 a uniformly chosen stored image is returned and replaced by
the new one, otherwise the new image is returned.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp


class ImagePool(NamedTuple):
  images: jax.Array   # [size, H, W, C]
  count: jax.Array    # int32 scalar: images stored so far (<= size)


def init_pool(size: int, image_shape: Sequence[int], dtype=jnp.float32) -> ImagePool:
  if size < 0:
    raise ValueError(f"pool size must be >= 0, got {size}.")
  return ImagePool(jnp.zeros((size, *image_shape), dtype), jnp.zeros((), jnp.int32))


def pool_query(pool: ImagePool, images: jax.Array, key: jax.Array) -> tuple[ImagePool, jax.Array]:
  """images: [B, H, W, C] -> (new pool, [B, H, W, C] images for the D update)."""
  size = pool.images.shape[0]
  if size == 0:
    return pool, images
  keys = jax.random.split(key, images.shape[0])

  def one(carry, inp):
    buf, count = carry
    img, k = inp
    k1, k2 = jax.random.split(k)
    full = count >= size
    swap = full & (jax.random.uniform(k1) > 0.5)
    idx = jnp.where(full, jax.random.randint(k2, (), 0, size), count)
    old = buf[idx]
    out = jnp.where(swap, old, img)
    write = swap | ~full
    buf = buf.at[idx].set(jnp.where(write, img.astype(buf.dtype), old))
    return (buf, jnp.minimum(count + 1, size)), out

  (buf, count), out = jax.lax.scan(one, (pool.images, pool.count), (images, keys))
  return ImagePool(buf, count), out.astype(images.dtype)
