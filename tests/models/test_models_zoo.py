"""Model zoo: build, forward, widths round-trip, registry and argument errors."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxvision import models
from jaxvision.core.registry import MODELS, UnknownNameError

ALL = ["cnn_small", "vgg16", "resnet20", "resnet32", "resnet56", "resnet110", "googlenet",
       "resnet18", "resnet34", "resnet50", "mobilenet_v1", "mobilenet_v2"]


def test_registry_lists_all_models():
  assert set(ALL) <= set(MODELS.names())
  with pytest.raises(UnknownNameError, match="resnet56"):
    models.build("resnet57", 10, rngs=nnx.Rngs(0))


def _jit_call(m, x, train):
  """m(x, train) compiled (eager NNX dispatch is slow for deep nets); BN updates written back."""
  g, state = nnx.split(m)

  def f(state, x):
    mm = nnx.merge(g, state, copy=True)
    return mm(x, train=train), nnx.state(mm)

  y, new_state = jax.jit(f)(state, x)
  nnx.update(m, new_state)
  return y


@pytest.mark.parametrize("name", ALL)
def test_build_and_forward_small(name):
  hw = models.input_shape(name)[0]
  hw = 32  # ImageNet models also run at 32x32 here (global pooling keeps shapes valid).
  m = models.build(name, 7, rngs=nnx.Rngs(0), width_multiplier=0.125)
  x = jax.random.normal(jax.random.key(1), (2, hw, hw, 3))
  before = jax.tree.map(np.asarray, nnx.state(m, nnx.BatchStat))
  y_eval = _jit_call(m, x, False)
  assert y_eval.shape == (2, 7) and bool(jnp.all(jnp.isfinite(y_eval)))
  # Eval mode leaves BN statistics alone; train mode updates them.
  same = jax.tree.map(lambda a, b: np.array_equal(a, np.asarray(b)), before,
                      nnx.state(m, nnx.BatchStat))
  assert all(jax.tree.leaves(same))
  y_train = _jit_call(m, x, True)
  assert y_train.shape == (2, 7)
  changed = jax.tree.map(lambda a, b: not np.array_equal(a, np.asarray(b)), before,
                         nnx.state(m, nnx.BatchStat))
  assert any(jax.tree.leaves(changed))
  assert m.widths == models.default_widths(name, width_multiplier=0.125)


@pytest.mark.parametrize("name", ["vgg16", "resnet20", "resnet50", "googlenet", "mobilenet_v1",
                                  "mobilenet_v2", "resnet18"])
def test_widths_round_trip(name):
  """Random (pruned) widths: the built model reports them and its convs have those widths."""
  rng = np.random.default_rng(0)
  w = [int(max(1, v // 8)) for v in models.default_widths(name)]
  w = [int(rng.integers(1, v + 1)) for v in w]
  if name == "mobilenet_v2":  # residual units must keep in == out: keep outputs at default/8
    d = [max(1, v // 8) for v in models.default_widths(name)]
    w = [d[0]] + [v for i in range(17) for v in (w[1 + 2 * i], d[2 + 2 * i])] + [d[-1]]
  m = nnx.eval_shape(lambda: models.build(name, 10, rngs=nnx.Rngs(0), widths=w))
  assert m.widths == w
  convs = dict(models.conv_layers(m))
  got = [convs[p].kernel.get_value().shape[-1] for p in m.width_sources()]
  assert got == w


def test_conv_layer_paths_match_state_paths():
  m = models.build("resnet20", 10, rngs=nnx.Rngs(0), width_multiplier=0.25, shortcut="B")
  flat = {"/".join(map(str, k)) for k, _ in nnx.to_flat_state(nnx.state(m, nnx.Param))}
  paths = [p for p, _ in models.conv_layers(m)]
  assert len(paths) == 19 + 2  # 19 convs + 2 projection shortcuts
  assert all(f"{p}/kernel" in flat for p in paths)
  assert "layer2/0/downsample_conv" in paths


def test_option_a_shortcut_is_parameter_free_and_pads_channels():
  m = models.build("resnet20", 10, rngs=nnx.Rngs(0), shortcut="A")
  assert not any("downsample" in p for p, _ in models.conv_layers(m))
  blk = m.layer2[0]
  # Zero the residual branch: output = relu(shortcut(x)); shortcut = subsample + zero pad 8/8.
  for bnm in (blk.bn2,):
    bnm.scale.set_value(jnp.zeros_like(bnm.scale.get_value()))
  x = jax.random.normal(jax.random.key(0), (1, 8, 8, 16))
  y = blk(x, train=False)
  want = jnp.pad(jax.nn.relu(x[:, ::2, ::2, :]), ((0, 0), (0, 0), (0, 0), (8, 8)))
  np.testing.assert_allclose(np.asarray(y), np.asarray(want), atol=1e-6)


def test_dtype_and_param_dtype():
  m = models.build("resnet20", 10, rngs=nnx.Rngs(0), width_multiplier=0.25, dtype="bfloat16")
  y = m(jnp.ones((1, 32, 32, 3)), train=False)
  assert y.dtype == jnp.bfloat16
  assert all(v.dtype == jnp.float32 for v in jax.tree.leaves(nnx.state(m, nnx.Param)))


def test_vgg_init_follows_spec():
  m = models.build("vgg16", 10, rngs=nnx.Rngs(0))
  k = np.asarray(m.convs[5].kernel.get_value())  # 3x3x256x256, fan_out = 9*256
  np.testing.assert_allclose(k.std(), np.sqrt(2.0 / (9 * 256)), rtol=0.02)
  np.testing.assert_array_equal(np.asarray(m.convs[5].bias.get_value()), 0.0)
  np.testing.assert_allclose(np.asarray(m.classifier.kernel.get_value()).std(), 0.01, rtol=0.1)
  assert m.bns[0].momentum == 0.9 and m.bns[0].epsilon == 1e-5


@pytest.mark.parametrize("kw, match", [
    (dict(name="resnet20", widths=[16] * 8), "9 entries"),
    (dict(name="vgg16", widths=[0] + [64] * 12), ">= 1"),
    (dict(name="resnet56", shortcut="C"), "shortcut"),
    (dict(name="resnet50", widths=[64] * 36), "37 entries"),
])
def test_bad_arguments_raise_clear_errors(kw, match):
  name = kw.pop("name")
  with pytest.raises(ValueError, match=match):
    models.build(name, 10, rngs=nnx.Rngs(0), **kw)
  with pytest.raises(TypeError, match="fixes"):
    models.build("resnet56", 10, rngs=nnx.Rngs(0), depth=20)


def test_default_widths_formats():
  assert models.default_widths("vgg16")[:3] == [64, 64, 128]
  assert models.default_widths("resnet56") == [16] * 9 + [32] * 9 + [64] * 9
  w50 = models.default_widths("resnet50")
  assert len(w50) == 37 and w50[0] == 64 and w50[-4:] == [256, 512, 1024, 2048]
  assert models.default_widths("googlenet")[:3] == [96, 16, 32]
  assert len(models.default_widths("mobilenet_v2")) == 36
