"""masked_weight: forward w*m, OptG gradients, Pallas (interpret) parity."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.kernels import masked_weight


def _data(shape, dtype=jnp.float32, seed=0):
  k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
  w = jax.random.normal(k1, shape).astype(dtype)
  s = jax.random.normal(k2, shape)
  g = jax.random.normal(k3, shape).astype(dtype)
  return w, s, g


@pytest.mark.parametrize("impl", ["xla", "pallas", "pallas_tpu"])
@pytest.mark.parametrize("mode", ["threshold", "mask", "mask+scores"])
def test_forward_and_optg_gradients_exact(impl, mode):
  shape, dtype = ((3, 3, 4, 8), jnp.float32) if mode != "mask" else ((5, 7, 3), jnp.bfloat16)
  w, s, g = _data(shape, dtype)
  m = np.asarray(s) >= 0.25
  if mode == "threshold":
    f = lambda w, s: masked_weight(w, s, threshold=0.25, impl=impl)  # noqa: E731
  elif mode == "mask":
    f = lambda w, s: masked_weight(w, mask=jnp.asarray(m), impl=impl)  # noqa: E731
  else:
    f = lambda w, s: masked_weight(w, s, mask=jnp.asarray(m, jnp.float32), impl=impl)  # noqa: E731
  out, vjp = jax.jit(lambda w, s: jax.vjp(f, w, s))(w, s)
  dw, ds = vjp(g)
  wf, gf = np.asarray(w, np.float32), np.asarray(g, np.float32)
  assert out.dtype == dtype
  np.testing.assert_array_equal(np.asarray(out, np.float32), wf * m)
  np.testing.assert_array_equal(np.asarray(dw, np.float32), gf * m)
  if mode == "mask":
    np.testing.assert_array_equal(np.asarray(ds), 0.0)  # scores not given
  else:
    np.testing.assert_array_equal(np.asarray(ds), gf * wf)  # dscores = g * w, dense
  assert 0.2 < m.mean() < 0.6


def test_threshold_is_inclusive_and_traced():
  w = jnp.asarray([1.0, 2.0, 3.0, 4.0])
  s = jnp.asarray([0.1, 0.5, 0.5, 0.9])

  @jax.jit
  def f(t):
    return masked_weight(w, s, threshold=t)

  np.testing.assert_array_equal(np.asarray(f(0.5)), [0, 2, 3, 4])
  np.testing.assert_array_equal(np.asarray(f(0.95)), [0, 0, 0, 0])


@pytest.mark.parametrize("impl", ["xla", "pallas"])
def test_no_retrace_on_repeated_calls(impl):
  chex.clear_trace_counter()

  @jax.jit
  @chex.assert_max_traces(n=1)
  def step(w, s, t):
    return jax.grad(lambda w, s: jnp.sum(masked_weight(w, s, threshold=t, impl=impl) ** 2),
                    (0, 1))(w, s)

  for i in range(3):
    w, s, _ = _data((8, 16), seed=i)
    step(w, s, 0.1 * i)


def test_bad_inputs_raise_clear_errors():
  w, s, _ = _data((4, 4))
  with pytest.raises(ValueError, match="exactly one"):
    masked_weight(w, s)
  with pytest.raises(ValueError, match="exactly one"):
    masked_weight(w, s, mask=s > 0, threshold=0.0)
  with pytest.raises(ValueError, match="needs scores"):
    masked_weight(w, threshold=0.0)
  with pytest.raises(ValueError, match="scores shape"):
    masked_weight(w, s[:2], threshold=0.0)
  with pytest.raises(ValueError, match="mask shape"):
    masked_weight(w, mask=jnp.ones((2, 2)))
  with pytest.raises(ValueError, match="scalar"):
    masked_weight(w, s, threshold=jnp.ones(4))
