"""jaxvision.quant: fake-quant levels, per-channel scales, STE, EMA, injection, export."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxvision import quant
from jaxvision.quant import ops
from tiny_models import TinyBNCNN as TinyCNN


def test_fake_quant_levels_and_error_bound():
  spec = quant.QuantSpec(bits=4, per_channel=True)
  x = jax.random.normal(jax.random.key(0), (64, 5)) * jnp.arange(1, 6)
  lo, hi = quant.channel_minmax(x, -1)
  y = quant.fake_quant(x, lo, hi, spec, axis=-1)
  s, _ = quant.qparams(lo, hi, spec)
  for c in range(5):
    assert len(np.unique(np.asarray(y[:, c]))) <= 16
    assert float(jnp.max(jnp.abs(y[:, c] - x[:, c]))) <= 1.0 / float(s[c]) + 1e-6
    # the minimum is reproduced within one step
    assert abs(float(y[jnp.argmin(x[:, c]), c] - lo[c])) <= 1.0 / float(s[c]) + 1e-6
  # channels with different ranges get different steps
  assert len(np.unique(np.round(np.asarray(s), 5))) == 5


def test_fake_quant_hand_values_and_clipping():
  spec = quant.QuantSpec(bits=2)  # range [0, 3]: s = 1, z = -2, levels 0, 1, 2, 3
  x = jnp.array([-5.0, 0.2, 1.4, 2.6, 9.0])
  y = quant.fake_quant(x, jnp.float32(0.0), jnp.float32(3.0), spec)
  np.testing.assert_allclose(np.asarray(y), [0.0, 0.0, 1.0, 3.0, 3.0])
  s, z = quant.qparams(0.0, 3.0, spec)
  assert float(s) == 1.0 and float(z) == -2.0
  sym = quant.QuantSpec(bits=3, symmetric=True)  # a = 3, qmax = 3: step 1, z = 0
  y = quant.fake_quant(jnp.array([-7.0, -1.4, 0.4, 2.6, 7.0]), jnp.float32(-3.0),
                       jnp.float32(3.0), sym)
  np.testing.assert_allclose(np.asarray(y), [-4.0, -1.0, 0.0, 3.0, 3.0])


def test_kernel_path_matches_reference():
  spec = quant.QuantSpec(bits=4, per_channel=True)
  x = jax.random.normal(jax.random.key(1), (3, 3, 4, 6))
  lo, hi = quant.channel_minmax(x, -1)
  s, z = quant.qparams(lo, hi, spec)
  ref = quant.fake_quant_reference(x, s, z, spec, -1)
  got = quant.fake_quant(x, lo, hi, spec, -1)
  step = 1.0 / np.asarray(s)
  # identical codes up to float ties: at most one level apart, almost everywhere equal
  diff = np.abs(np.asarray(got - ref))
  assert np.all(diff <= step + 1e-6) and np.mean(diff < 1e-5) > 0.99


def test_ste_gradient_is_identity_everywhere():
  spec = quant.QuantSpec(bits=3)
  x = jnp.linspace(-4.0, 4.0, 33)  # half of it outside the range [-1, 1]
  g = jax.grad(lambda v: jnp.sum(quant.fake_quant(v, -1.0, 1.0, spec)))(x)
  np.testing.assert_array_equal(np.asarray(g), np.ones(33))
  # no gradient reaches the range
  gl = jax.grad(lambda lo: jnp.sum(quant.fake_quant(x, lo, 1.0, spec)))(jnp.float32(-1.0))
  assert float(gl) == 0.0


def test_ema_quirk_and_standard_ema():
  q = quant.ActQuantizer(quant.act_spec(4, ema_quirk=True))
  q.calibrating = True
  vals = []
  for _ in range(300):
    q(jnp.ones((4,)))
    vals.append(float(q.range()[1]))
  assert abs(vals[1] - 1.0 / 0.19) < 1e-3  # 5.263 after two updates
  assert abs(vals[-1] - 1.0) < 1e-6
  q2 = quant.ActQuantizer(quant.act_spec(4))
  q2.calibrating = True
  q2(jnp.ones((4,)))
  assert abs(float(q2.range()[1]) - 1.0) < 1e-6  # bias-corrected at read time
  q2(3.0 * jnp.ones((4,)))
  assert abs(float(q2.range()[1]) - (0.09 * 1 + 0.1 * 3) / 0.19) < 1e-5


def test_minmax_range_and_uncalibrated_passthrough():
  q = quant.ActQuantizer(quant.act_spec(4, range_mode="minmax"))
  x = jnp.array([0.3, 1.7])
  np.testing.assert_array_equal(np.asarray(q(x)), np.asarray(x))  # uncalibrated
  q.calibrating = True
  q(jnp.array([0.0, 2.0]))
  q(jnp.array([-1.0, 1.0]))
  lo, hi = q.range()
  assert float(lo) == -1.0 and float(hi) == 2.0


def test_rules_first_last_and_overrides():
  m = TinyCNN(nnx.Rngs(0))
  x = jnp.ones((1, 8, 8, 3))
  assert quant.call_order(m, x) == ["c1", "c2", "fc"]
  rules = quant.uniform_rules(4, overrides=[("fc", 8)])
  paths = quant.quantize_model(m, rules, sample_input=x)
  assert paths == ["c1", "c2", "fc"]
  layers = dict(quant.quant_layers(m))
  assert layers["c1"].act is None and layers["c1"].weight_spec.bits == 4  # input stays FP
  assert layers["c2"].act.spec.bits == 4 and layers["fc"].weight_spec.bits == 8
  with pytest.raises(ValueError, match="already"):
    quant.quantize_model(m, rules, sample_input=x)
  with pytest.raises(ValueError, match="sample_input"):
    quant.quantize_model(TinyCNN(nnx.Rngs(0)), rules)


def test_per_channel_weight_codes_in_model():
  m = TinyCNN(nnx.Rngs(0))
  quant.quantize_model(m, quant.uniform_rules(4), sample_input=jnp.ones((1, 8, 8, 3)))
  x = jax.random.normal(jax.random.key(2), (16, 8, 8, 3))
  quant.calibrate(m, [x])
  exp = quant.export_integers(m)
  w = exp["c2"]["w_q"]
  assert w.dtype == np.int8 and w.min() >= -8 and w.max() <= 7
  for c in range(w.shape[-1]):
    assert len(np.unique(w[..., c])) <= 16
  assert len(np.unique(np.round(exp["c2"]["w_s"], 4))) > 1
  # the codes decode to the fake-quantized kernel
  k = m.c2.layer.kernel[...]
  lo, hi = quant.channel_minmax(k, -1)
  fqk = quant.fake_quant(k, lo, hi, quant.weight_spec(4), -1)
  dec = (w.astype(np.float32) - exp["c2"]["w_z"]) / exp["c2"]["w_s"]
  np.testing.assert_allclose(dec, np.asarray(fqk), atol=1e-5)


def test_integer_model_agrees_with_fake_quant_and_bits8_is_close():
  x = jax.random.normal(jax.random.key(3), (32, 8, 8, 3))
  fp = TinyCNN(nnx.Rngs(1))
  for _ in range(5):  # populate BN running statistics
    fp(x + 0.1, train=True)
  y_fp = fp(x, train=False)
  for bits in (4, 8):
    m = nnx.clone(fp)
    quant.quantize_model(m, quant.uniform_rules(bits), sample_input=x[:1])
    quant.calibrate(m, [x])
    y_fq = m(x, train=False)
    y_int = quant.to_integer_model(m)(x, train=False)
    np.testing.assert_allclose(np.asarray(y_int), np.asarray(y_fq), atol=1e-4, rtol=1e-4)
    np.testing.assert_array_equal(np.argmax(y_int, -1), np.argmax(y_fq, -1))
    if bits == 8:
      agree = np.mean(np.argmax(y_fq, -1) == np.argmax(y_fp, -1))
      assert agree >= 0.95


def test_uncalibrated_export_fails_and_dequantize_restores():
  m = TinyCNN(nnx.Rngs(0))
  x = jnp.ones((2, 8, 8, 3))
  y0 = m(x)
  quant.quantize_model(m, quant.uniform_rules(4), sample_input=x)
  with pytest.raises(ValueError, match="uncalibrated"):
    quant.to_integer_model(m)
  quant.dequantize_model(m)
  np.testing.assert_allclose(np.asarray(m(x)), np.asarray(y0))


def test_model_size_bits():
  m = TinyCNN(nnx.Rngs(0))
  quant.quantize_model(m, quant.uniform_rules(4), sample_input=jnp.ones((1, 8, 8, 3)))
  sz = quant.model_size_bits(m)
  kernels = 3 * 3 * 3 * 8 + 3 * 3 * 8 * 16 + 16 * 10
  others = 10 + 2 * 8 + 2 * 16  # fc bias, BN gamma/beta
  assert sz["params"] == kernels + others
  assert sz["fp32"] == 32 * (kernels + others)
  assert sz["quantized"] == 32 * others + 4 * kernels + 64 * (8 + 16 + 10)


def test_bad_spec_errors():
  with pytest.raises(ValueError, match="bits"):
    quant.QuantSpec(bits=1)
  with pytest.raises(ValueError, match="range_mode"):
    quant.QuantSpec(range_mode="max")
  with pytest.raises(ValueError, match="regex"):
    quant.QuantRule("(")
  assert ops.USE_KERNEL in (True, False)
