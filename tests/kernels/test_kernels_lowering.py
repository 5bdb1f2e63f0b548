"""The Pallas kernels lower for real targets (run on CPU via jax.export).

This runs the Pallas -> Triton IR (cuda) and Pallas -> Mosaic (tpu) lowering of
forward and backward kernels at realistic shapes. It does not run Triton's own
compiler or the kernels; that needs the device machine.
"""
import jax
import jax.numpy as jnp
import pytest

from jaxvision.kernels import _dispatch, dynamic_conv, dynamic_conv_per_example, fake_quant
from jaxvision.kernels import masked_weight

S = jax.ShapeDtypeStruct
TARGET = {"gpu": ("cuda", "__gpu$xla.gpu.triton"), "tpu": ("tpu", "tpu_custom_call")}


def _lower(monkeypatch, family, f, *args):
  monkeypatch.setattr(_dispatch, "backend", lambda: family)
  platform, call = TARGET[family]
  exp = jax.export.export(jax.jit(f), platforms=[platform],
                          disabled_checks=[jax.export.DisabledSafetyCheck.custom_call(call)])
  return exp(*args).mlir_module()


@pytest.mark.parametrize("family", ["gpu", "tpu"])
@pytest.mark.parametrize("axis,shape", [(None, (3, 3, 64, 64)), (3, (3, 3, 64, 64)),
                                        (0, (64, 3, 3, 3)), (None, (1000,))])
def test_fake_quant_lowers(monkeypatch, family, axis, shape):
  c = None if axis is None else shape[axis]
  sc = S((), jnp.float32) if axis is None else S((c,), jnp.float32)

  def f(x, s):
    out, vjp = jax.vjp(lambda x, s: fake_quant(x, s, s * 0 + 3, bits=4, axis=axis,
                                               symmetric=False, learn_scale=True,
                                               impl="pallas"), x, s)
    return out, vjp(x)

  mod = _lower(monkeypatch, family, f, S(shape, jnp.bfloat16), sc)
  assert TARGET[family][1] in mod
  assert "fake_quant_fwd" in mod and "fake_quant_bwd" in mod


@pytest.mark.parametrize("family", ["gpu", "tpu"])
def test_masked_weight_lowers(monkeypatch, family):
  w = S((7, 7, 3, 64), jnp.float32)
  f = lambda w, s: jax.grad(  # noqa: E731
      lambda w, s: jnp.sum(masked_weight(w, s, threshold=0.1, impl="pallas")), (0, 1))(w, s)
  assert TARGET[family][1] in _lower(monkeypatch, family, f, w, w)


@pytest.mark.parametrize("shape", [(2, 26, 26, 256, 8, 7), (2, 52, 52, 16, 4, 3)])
def test_dynamic_conv_lowers_to_triton(monkeypatch, shape):
  b, h, w, c, g, k = shape
  x, kn, ke = S((b, h, w, c), jnp.bfloat16), S((b, h, w, g * k * k), jnp.bfloat16), S(
      (b, k, k, g), jnp.float32)
  def f(x, kn):
    out, vjp = jax.vjp(lambda x, kn: dynamic_conv(x, kn, kernel_size=k, groups=g, impl="pallas"),
                       x, kn)
    return out, vjp(out)

  names = ("dynamic_conv_fwd", "dynamic_conv_bwd_x", "dynamic_conv_bwd_k")
  mod = _lower(monkeypatch, "gpu", f, x, kn)
  assert "__gpu$xla.gpu.triton" in mod and all(n in mod for n in names)
  def fe(x, kn):
    out, vjp = jax.vjp(lambda x, kn: dynamic_conv_per_example(x, kn, impl="pallas"), x, kn)
    return out, vjp(out)

  mod = _lower(monkeypatch, "gpu", fe, x, ke)
  assert "__gpu$xla.gpu.triton" in mod and all(n in mod for n in names)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_dynamic_conv_lowers_to_mosaic(monkeypatch, dtype):
  b, h, w, c, g, k = 2, 26, 26, 256, 8, 3  # a LaConvNet-S stage at 416 px input
  def f(x, kn):
    out, vjp = jax.vjp(lambda x, kn: dynamic_conv(x, kn, kernel_size=k, groups=g, impl="pallas"),
                       x, kn)
    return out, vjp(out)

  mod = _lower(monkeypatch, "tpu", f, S((b, h, w, c), dtype), S((b, h, w, g * k * k), dtype))
  assert "tpu_custom_call" in mod
  assert all(n in mod for n in ("dynamic_conv_tpu_fwd", "dynamic_conv_tpu_bwd_x",
                                "dynamic_conv_tpu_bwd_k"))
