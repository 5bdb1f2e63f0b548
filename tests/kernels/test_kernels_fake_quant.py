"""fake_quant: reference semantics, STE/LSQ gradients, Pallas (interpret) parity."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.kernels import fake_quant, round_half_even


def test_round_half_even_matches_jnp_round():
  ties = np.arange(-20, 20, dtype=np.float32) + 0.5
  rnd = np.random.default_rng(0).normal(size=2000).astype(np.float32) * 50
  edge = np.array([0.49999997, -0.49999997, 1.4999999, 2.5000002, 8388607.5, 8388608.0,
                   -8388609.0, 1e9, -0.0, 0.0], np.float32)
  v = jnp.asarray(np.concatenate([ties, rnd, edge]))
  np.testing.assert_array_equal(np.asarray(round_half_even(v)), np.asarray(jnp.round(v)))
  np.testing.assert_array_equal(np.asarray(round_half_even(jnp.asarray([0.5, 1.5, 2.5, -2.5]))),
                                [0.0, 2.0, 2.0, -2.0])


@pytest.mark.parametrize("impl", ["xla", "pallas"])
def test_hand_computed_symmetric_2bit(impl):
  x = jnp.asarray([-3.0, -2.0, -1.5, -0.5, 0.5, 1.5, 2.5, 3.0])
  out = fake_quant(x, 1.0, bits=2, impl=impl)  # levels -2..1
  np.testing.assert_array_equal(np.asarray(out), [-2, -2, -2, 0, 0, 1, 1, 1])
  g = jax.grad(lambda x: jnp.sum(fake_quant(x, 1.0, bits=2, impl=impl)))(x)
  # round(x) = [-3,-2,-2,-0,0,2,2,3]; in range [-2, 1] -> STE mask.
  np.testing.assert_array_equal(np.asarray(g), [0, 1, 1, 1, 1, 0, 0, 0])


def test_hand_computed_asymmetric():
  x = jnp.asarray([-1.0, -0.2, 0.0, 0.25, 1.0, 3.0])
  out = fake_quant(x, 0.5, 2.0, bits=2, symmetric=False, impl="xla")
  # v = round(x/0.5)+2 = [0, 2(tie -0.4->0), 2, 2(0.5->0), 4, 8]; clip [0,3]
  np.testing.assert_allclose(np.asarray(out), [-1.0, 0.0, 0.0, 0.0, 0.5, 0.5])
  gs = jax.grad(lambda s: jnp.sum(fake_quant(x, s, 2.0, bits=2, symmetric=False,
                                             learn_scale=True, impl="xla")))(0.5)
  # LSQ: in range (q-zp) - x/s ; out of range q-zp.
  want = (0 - 2 - (-2.0)) + (0 - (-0.4)) + 0 + (0 - 0.5) + (1 - 0) + (1)
  np.testing.assert_allclose(float(gs), want, rtol=1e-6)


CASES = [  # (shape, axis, symmetric, bits, dtype, impl)
    ((5, 7), None, True, 8, jnp.float32, "pallas"),
    ((3, 4, 5), None, False, 3, jnp.bfloat16, "pallas"),
    ((3, 3, 4, 6), -1, True, 4, jnp.float32, "pallas"),
    ((6, 3, 3, 2), 0, False, 5, jnp.float32, "pallas"),
    ((2, 3, 4, 5), 2, False, 6, jnp.float32, "pallas_tpu"),
    ((3, 3, 4, 6), 3, True, 7, jnp.bfloat16, "pallas_tpu"),
]


def _args(shape, axis, symmetric, bits, dtype, seed=0):
  k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
  x = (jax.random.normal(k1, shape) * 2).astype(dtype)
  c = None if axis is None else shape[axis]
  qmax = 2 ** (bits - 1) if symmetric else 2 ** bits
  s = (0.5 + jax.random.uniform(k2, () if c is None else (c,))) * 3.0 / qmax
  zp = None if symmetric else jnp.floor(jax.random.uniform(k3, s.shape) * (2 ** bits))
  ct = jax.random.normal(k3, shape).astype(dtype)
  return x, s, zp, ct


@pytest.mark.parametrize("shape,axis,symmetric,bits,dtype,impl", CASES)
def test_pallas_matches_reference(shape, axis, symmetric, bits, dtype, impl):
  x, s, zp, ct = _args(shape, axis, symmetric, bits, dtype)
  kw = dict(bits=bits, axis=axis, symmetric=symmetric, learn_scale=True)

  def run(x, s, impl):
    out, vjp = jax.vjp(lambda x, s: fake_quant(x, s, zp, impl=impl, **kw), x, s)
    return (out, *vjp(ct))

  ref, gx_r, gs_r = jax.jit(run, static_argnums=2)(x, s, "xla")
  out, gx_p, gs_p = jax.jit(run, static_argnums=2)(x, s, impl)
  assert out.dtype == dtype and out.shape == x.shape
  np.testing.assert_array_equal(np.asarray(out, np.float32), np.asarray(ref, np.float32))
  np.testing.assert_array_equal(np.asarray(gx_p, np.float32), np.asarray(gx_r, np.float32))
  np.testing.assert_allclose(np.asarray(gs_p), np.asarray(gs_r), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
@pytest.mark.parametrize("symmetric", [True, False])
def test_at_most_2_pow_bits_levels_per_channel(bits, symmetric):
  x, s, zp, _ = _args((64, 40, 3), 2, symmetric, bits, jnp.float32, seed=bits)
  x = x * 10  # many values outside the range
  out = np.asarray(fake_quant(x, s, zp, bits=bits, axis=2, symmetric=symmetric))
  for ch in range(3):
    n = len(np.unique(out[..., ch]))
    assert 2 <= n <= 2 ** bits
  if bits == 2:  # with 10x spread all 4 levels are hit
    assert all(len(np.unique(out[..., ch])) == 4 for ch in range(3))


@pytest.mark.parametrize("impl", ["xla", "pallas"])
def test_ste_gradient_is_exactly_clipped_identity(impl):
  x, s, zp, ct = _args((4, 9, 8), -1, False, 3, jnp.float32, seed=3)
  x = x * 3
  gx = jax.grad(lambda x: jnp.sum(fake_quant(x, s, zp, bits=3, axis=-1, symmetric=False,
                                             impl=impl) * ct))(x)
  v = np.round(np.asarray(x) * np.asarray(1.0 / s)) + np.asarray(zp)
  inside = (v >= 0) & (v <= 7)
  assert 0 < inside.mean() < 1
  np.testing.assert_array_equal(np.asarray(gx), np.where(inside, np.asarray(ct), 0.0))
  gs = jax.grad(lambda s: jnp.sum(fake_quant(x, s, zp, bits=3, axis=-1, symmetric=False,
                                             impl=impl)))(s)
  np.testing.assert_array_equal(np.asarray(gs), 0.0)  # learn_scale=False


def test_lsq_gradient_matches_autodiff_of_ste_formula():
  x, s, _, ct = _args((6, 5, 4), 0, True, 4, jnp.float32, seed=5)

  def ste(x, s):  # independent oracle: round with a stop-gradient STE, autodiff the rest
    v = x / s.reshape(-1, 1, 1)
    r = v + jax.lax.stop_gradient(jnp.round(v) - v)
    r = jnp.where(r > 7, 7.0, jnp.where(r < -8, -8.0, r))  # inclusive range, as torch
    return r * s.reshape(-1, 1, 1)

  want = jax.grad(lambda s: jnp.sum(ste(x, s) * ct))(s)
  got = jax.grad(lambda s: jnp.sum(fake_quant(x, s, bits=4, axis=0, learn_scale=True) * ct))(s)
  np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("impl", ["xla", "pallas"])
def test_no_retrace_on_repeated_calls(impl):
  chex.clear_trace_counter()

  @jax.jit
  @chex.assert_max_traces(n=1)
  def step(x, s):
    return jax.grad(lambda x, s: jnp.sum(fake_quant(x, s, bits=4, axis=1, learn_scale=True,
                                                    impl=impl)), (0, 1))(x, s)

  for i in range(3):
    x, s, _, _ = _args((4, 6), 1, True, 4, jnp.float32, seed=i)
    step(x, s)


def test_bad_inputs_raise_clear_errors():
  x = jnp.ones((4, 3))
  with pytest.raises(ValueError, match="bits"):
    fake_quant(x, 0.1, bits=1)
  with pytest.raises(ValueError, match="zero_point"):
    fake_quant(x, 0.1, 2.0, bits=4)
  with pytest.raises(ValueError, match=r"shape \(3,\)"):
    fake_quant(x, jnp.ones(4), bits=4, axis=1)
  with pytest.raises(ValueError, match="scalar"):
    fake_quant(x, jnp.ones(3), bits=4)
  with pytest.raises(ValueError, match="axis"):
    fake_quant(x, 0.1, bits=4, axis=2)
  with pytest.raises(TypeError, match="float32 or bfloat16"):
    fake_quant(x.astype(jnp.int32), 0.1, bits=4)
  with pytest.raises(ValueError, match="impl"):
    fake_quant(x, 0.1, bits=4, impl="cuda")
