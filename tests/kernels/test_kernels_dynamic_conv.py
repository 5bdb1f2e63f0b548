"""dynamic_conv (LaConv per-pixel) and per-example: naive oracle, identities, Pallas parity."""
import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jaxvision.kernels import dynamic_conv, dynamic_conv_per_example
from jaxvision.kernels.dynamic_conv import api


def _naive(x, kern, k, g, d):
  """Triple loop straight from the laconv spec (§2.2), numpy."""
  x, kern = np.asarray(x, np.float64), np.asarray(kern, np.float64)
  b, h, w, c = x.shape
  p = d * (k - 1) // 2
  xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
  kr = kern.reshape(b, h, w, g, k * k)
  out = np.zeros_like(x)
  for dy in range(k):
    for dx in range(k):
      xs = xp[:, dy * d:dy * d + h, dx * d:dx * d + w, :]
      for ch in range(c):
        out[..., ch] += kr[..., ch % g, dy * k + dx] * xs[..., ch]
  return out


def _data(b, h, w, c, g, k, dtype=jnp.float32, seed=0):
  ks = jax.random.split(jax.random.key(seed), 4)
  x = jax.random.normal(ks[0], (b, h, w, c)).astype(dtype)
  kern = jax.random.normal(ks[1], (b, h, w, g * k * k)).astype(dtype)
  ct = jax.random.normal(ks[2], (b, h, w, c)).astype(dtype)
  ke = jax.random.normal(ks[3], (b, k, k, g)).astype(dtype)
  return x, kern, ct, ke


@pytest.mark.parametrize("k,g,d", [(3, 2, 1), (5, 4, 1), (3, 4, 2)])
def test_reference_equals_naive_loop(k, g, d):
  x, kern, _, ke = _data(2, 5, 6, 8, g, k)
  out = dynamic_conv(x, kern, kernel_size=k, groups=g, dilation=d, impl="xla")
  np.testing.assert_allclose(np.asarray(out), _naive(x, kern, k, g, d), atol=1e-5)
  # per-example == per-pixel with the kernel broadcast to every pixel
  kp = jnp.broadcast_to(ke.transpose(0, 3, 1, 2).reshape(2, 1, 1, g * k * k), kern.shape)
  pe = dynamic_conv_per_example(x, ke, dilation=d, impl="xla")
  np.testing.assert_allclose(np.asarray(pe), _naive(x, kp, k, g, d), atol=1e-5)


@pytest.mark.parametrize("impl", ["xla", "pallas"])
def test_centre_one_hot_is_identity_and_groups_interleave(impl):
  k, g = 3, 2
  x, kern, _, _ = _data(1, 4, 5, 4, g, k)
  centre = jnp.zeros_like(kern).reshape(1, 4, 5, g, 9).at[..., 4].set(1.0).reshape(kern.shape)
  np.testing.assert_array_equal(
      np.asarray(dynamic_conv(x, centre, kernel_size=k, groups=g, impl=impl)), np.asarray(x))
  # channels c and c+G share a kernel: equal inputs give equal outputs
  x2 = x.at[..., 2].set(x[..., 0])
  out = dynamic_conv(x2, kern, kernel_size=k, groups=g, impl=impl)
  np.testing.assert_array_equal(np.asarray(out[..., 2]), np.asarray(out[..., 0]))
  assert not np.allclose(np.asarray(out[..., 1]), np.asarray(out[..., 0]))


PALLAS_CASES = [  # (b, h, w, c, g, k, d, dtype)
    (2, 5, 6, 8, 2, 3, 1, jnp.float32),   # ragged W block
    (1, 3, 4, 16, 4, 3, 1, jnp.float32),
    (1, 5, 5, 8, 4, 3, 2, jnp.bfloat16),
]


@pytest.mark.parametrize("b,h,w,c,g,k,d,dtype", PALLAS_CASES)
def test_pallas_per_pixel_matches_reference(b, h, w, c, g, k, d, dtype):
  x, kern, ct, _ = _data(b, h, w, c, g, k, dtype)

  def run(x, kern, impl):
    out, vjp = jax.vjp(lambda x, kn: dynamic_conv(x, kn, kernel_size=k, groups=g, dilation=d,
                                                  impl=impl), x, kern)
    return (out, *vjp(ct))

  tol = 1e-5 if dtype == jnp.float32 else 3e-2
  run = jax.jit(run, static_argnums=2)
  for r, p in zip(run(x, kern, "xla"), run(x, kern, "pallas")):
    assert r.dtype == p.dtype and r.shape == p.shape
    np.testing.assert_allclose(np.asarray(p, np.float32), np.asarray(r, np.float32),
                               atol=tol * 5, rtol=tol)


@pytest.mark.parametrize("b,h,w,c,g,k,d,dtype", PALLAS_CASES[:2])
def test_pallas_per_example_matches_reference(b, h, w, c, g, k, d, dtype):
  x, _, ct, ke = _data(b, h, w, c, g, k, dtype)

  def run(x, ke, impl):
    out, vjp = jax.vjp(lambda x, kn: dynamic_conv_per_example(x, kn, dilation=d, impl=impl),
                       x, ke)
    return (out, *vjp(ct))

  run = jax.jit(run, static_argnums=2)
  for r, p in zip(run(x, ke, "xla"), run(x, ke, "pallas")):
    np.testing.assert_allclose(np.asarray(p), np.asarray(r), atol=5e-5, rtol=1e-5)


def test_reference_gradients_numerically():
  x, kern, _, _ = _data(1, 3, 4, 4, 2, 3)
  check_grads(
      lambda x, kn: dynamic_conv(x, kn, kernel_size=3, groups=2, impl="xla"), (x, kern),
      order=1, modes=["rev"], atol=1e-2, rtol=1e-2)


def test_dispatch_fallback_and_explicit_failure(monkeypatch):
  x, kern, _, _ = _data(1, 3, 3, 6, 2, 3)  # C=6 is not a power of two
  with pytest.raises(ValueError, match="powers of two"):
    dynamic_conv(x, kern, kernel_size=3, groups=2, impl="pallas")
  with pytest.raises(ValueError, match="vmem_budget"):
    dynamic_conv(x, kern, kernel_size=3, groups=2, impl="pallas_tpu",
                 config=api.DynamicConvConfig(tpu_vmem_budget=1000))
  with pytest.raises(ValueError, match="per-pixel only"):
    dynamic_conv_per_example(x, jnp.ones((1, 3, 3, 2)), impl="pallas_tpu")
  monkeypatch.setattr(api, "PREFERRED", {"cpu": ("pallas_gpu", "xla")})
  with warnings.catch_warnings(record=True) as rec:
    warnings.simplefilter("always")
    out = dynamic_conv(x, kern, kernel_size=3, groups=2)
  assert any("falling back" in str(r.message) for r in rec)
  np.testing.assert_allclose(np.asarray(out), _naive(x, kern, 3, 2, 1), atol=1e-5)


def test_bad_inputs_raise_clear_errors():
  x, kern, _, ke = _data(1, 3, 3, 4, 2, 3)
  with pytest.raises(ValueError, match="odd"):
    dynamic_conv(x, kern, kernel_size=2, groups=2)
  with pytest.raises(ValueError, match="dividing"):
    dynamic_conv(x, kern, kernel_size=3, groups=3)
  with pytest.raises(ValueError, match=r"groups\*k\*k"):
    dynamic_conv(x, kern[..., :9], kernel_size=3, groups=2)
  with pytest.raises(ValueError, match="NHWC"):
    dynamic_conv(x[0], kern, kernel_size=3, groups=2)
  with pytest.raises(ValueError, match=r"\[B,k,k,G\]"):
    dynamic_conv_per_example(x, ke[0])


def test_tpu_kernel_forward_and_vjp_equal_the_reference():
  """Mosaic TPU kernel in interpret mode: several row blocks (tpu_max_rows=2 -> grid 3), groups
  interleaved, dilation 2; forward, dx and dK against the reference's autodiff."""
  k, g, d = 3, 4, 2
  x, kern, ct, _ = _data(2, 6, 5, 8, g, k, seed=3)
  cfg = api.DynamicConvConfig(tpu_max_rows=2)

  @functools.partial(jax.jit, static_argnums=0)
  def f(impl):
    o, vjp = jax.vjp(lambda x, kn: dynamic_conv(x, kn, kernel_size=k, groups=g, dilation=d,
                                                impl=impl, config=cfg), x, kern)
    return o, vjp(ct)

  (o_ref, v_ref), (o, v) = f("xla"), f("pallas_tpu")
  np.testing.assert_allclose(np.asarray(o), _naive(x, kern, k, g, d), atol=1e-5)
  np.testing.assert_allclose(np.asarray(o), np.asarray(o_ref), atol=1e-5)
  for got, want in zip(v, v_ref):
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-4)
