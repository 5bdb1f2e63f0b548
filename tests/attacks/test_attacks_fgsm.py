"""I-FGSM family on a zoo ResNet: the branch_act hook (DecayReLU/SGM), budget, batch/loop
equality, determinism and sharding. One compiled attack with every option on (MI, DI, TI, SGM)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxvision import attacks
from jaxvision.models import CifarResNet, ResNet


def _close(a, b):
  np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * np.abs(b).max())


def test_branch_hook_decay_and_sgm_on_cifar_resnet():
  model = CifarResNet(10, rngs=nnx.Rngs(0), depth=14, stage_widths=(4, 4, 4))
  sur, var = attacks.from_nnx(model, mean=(0.4,) * 3, std=(0.3,) * 3)
  g = sur.num_gammas
  assert sur.stage_blocks == (2, 2, 2) and g == 3 and sur.relus_per_block == 1
  assert [sur.gamma_index(s, b) for s in range(3) for b in range(2)] == [None, 0, None, 1,
                                                                          None, 2]
  x = jax.random.uniform(jax.random.key(0), (1, 8, 8, 3))
  y = jnp.array([3])
  x3, y3 = jnp.repeat(x, 3, 0), jnp.repeat(y, 3)
  # rows: only gamma index 1 varies (0, 0.5, 1), every other decay factor is 1.
  gam = jnp.ones((3, g)).at[:, 1].set(jnp.array([0.0, 0.5, 1.0]))
  stop = lambda h, stage, block: jax.nn.relu(h) if block == 0 else jax.lax.stop_gradient(
      jax.nn.relu(h))

  def f(var, x, y, x3, y3):
    gr = lambda xx, yy, h: jax.grad(lambda z: attacks.ce_sum(sur.apply(var, z, h), yy))(xx)
    return (gr(x, y, None), gr(x, y, sur.decay_hook(jnp.ones((1, g)))),
            gr(x, y, sur.decay_hook(jnp.zeros((1, g)))), gr(x, y, stop),
            gr(x3, y3, sur.decay_hook(gam)), gr(x, y, sur.sgm_hook(0.25)),
            gr(x, y, sur.decay_hook(jnp.full((1, g), 0.25))),
            sur.apply(var, x), sur.apply(var, x, sur.decay_hook(jnp.full((1, g), 0.3))))
  plain, dec1, dec0, stopped, rows, sgm, dec_sgm, logits, logits_dec = map(
      np.asarray, jax.jit(f)(var, x, y, x3, y3))
  np.testing.assert_allclose(logits_dec, logits, rtol=1e-6, atol=1e-6)  # forward unchanged
  _close(dec1, plain)      # γ = 1 is the plain model
  _close(dec0, stopped)    # γ = 0: the gradient takes the shortcut paths only
  assert np.abs(dec0 - plain).max() > 1e-3 * np.abs(plain).max()
  _close(rows[1], 0.5 * rows[0] + 0.5 * rows[2])   # one block's branch gradient is γ-scaled
  _close(rows[2], plain[0])
  _close(sgm, dec_sgm)     # SGM γ = γ on the (single) branch ReLU of every non-first block


def test_bottleneck_hook_wiring_and_gamma_squared():
  model = ResNet(10, rngs=nnx.Rngs(0), depth=50, width_multiplier=1 / 16)
  sur, _ = attacks.from_nnx(model)
  assert sur.stage_blocks == (3, 4, 6, 3) and sur.relus_per_block == 2 and sur.num_gammas == 12
  seen = []
  def record(h, stage, block):
    seen.append((stage, block))
    return jax.nn.relu(h)
  jax.eval_shape(lambda x: model(x, branch_act=record), jnp.zeros((1, 32, 32, 3)))
  expect = [(s, b) for s, n in enumerate((3, 4, 6, 3)) for b in range(n) for _ in range(2)]
  assert seen == expect     # both branch ReLUs of every bottleneck, in order
  # In one bottleneck both decay ReLUs use γ: the branch gradient scales by γ².
  blk = model.layer2[1]
  x = jax.random.normal(jax.random.key(0), (1, 4, 4, blk.conv1.in_features))
  cot = jax.random.normal(jax.random.key(1), x.shape)

  def grads(gs):
    def one(gm):
      act = lambda h: attacks.decay_relu(h, gm)
      return jax.grad(lambda z: jnp.sum(blk(z, False, act) * cot))(x)
    return [one(gm) for gm in gs] + [jax.grad(lambda z: jnp.sum(blk(z, False) * cot))(x),
                                     blk(x, False, lambda h: attacks.decay_relu(h, 0.3)),
                                     blk(x, False)]
  g0, gh, g1, plain, out_dec, out = map(np.asarray, jax.jit(grads)(jnp.array([0.0, 0.5, 1.0])))
  _close(g1, plain)
  _close(gh, 0.75 * g0 + 0.25 * g1)
  np.testing.assert_allclose(out_dec, out, rtol=1e-6)


B, EPS = 4, 8 / 255
CFG = attacks.AttackConfig(eps=EPS, steps=3, momentum=1.0, di_prob=0.7, di_resize_rate=1.25,
                           ti_kernel=3, sgm_gamma=0.5)


@pytest.fixture(scope="module")
def setup():
  model = CifarResNet(10, rngs=nnx.Rngs(0), depth=14, stage_widths=(4, 4, 4))
  sur, var = attacks.from_nnx(model, mean=(0.4,) * 3, std=(0.3,) * 3)
  x = jax.random.uniform(jax.random.key(1), (B, 8, 8, 3))
  y = jax.jit(lambda v, z: attacks.predict_labels(sur, v, z))(var, x)
  attack = attacks.make_attack(CFG, sur)
  key = jax.random.key(7)
  adv = np.asarray(attack(var, x, y, key))
  return dict(sur=sur, var=var, x=x, y=y, attack=attack, key=key, adv=adv)


def test_budget_range_and_loss_increase(setup):
  s = setup
  adv, x = s["adv"], np.asarray(s["x"])
  assert np.abs(adv - x).max() <= EPS + 1e-6 and adv.min() >= 0 and adv.max() <= 1
  assert np.abs(adv - x).max() > 0.99 * EPS
  ce = jax.jit(lambda v, z, y: jax.vmap(
      lambda a, b: attacks.ce_sum(s["sur"].apply(v, a[None]), b[None]))(z, y))
  # a random-init surrogate with MI+DI+TI+SGM on 8x8 images: the loss rises on average
  assert np.mean(ce(s["var"], adv, s["y"])) > np.mean(ce(s["var"], s["x"], s["y"]))


def test_batched_equals_per_image_loop_and_determinism(setup):
  s = setup
  keys = attacks.example_keys(s["key"], B)
  loop = np.concatenate([np.asarray(s["attack"](s["var"], s["x"][i:i + 1], s["y"][i:i + 1],
                                                keys[i:i + 1])) for i in range(B)])
  np.testing.assert_allclose(loop, s["adv"], atol=1e-6)
  again = np.asarray(s["attack"](s["var"], s["x"], s["y"], s["key"]))
  np.testing.assert_array_equal(again, s["adv"])
  other = np.asarray(s["attack"](s["var"], s["x"], s["y"], jax.random.key(8)))
  assert not np.array_equal(other, s["adv"])   # DI draws come from the key


def test_sharded_over_data_axis_equals_unsharded(setup):
  s = setup
  mesh = jax.make_mesh((4,), ("data",), axis_types=(jax.sharding.AxisType.Auto,),
                       devices=jax.devices()[:4])
  sharded = attacks.make_attack(CFG, s["sur"], mesh=mesh)(s["var"], s["x"], s["y"], s["key"])
  assert sharded.sharding.spec[0] == "data"
  np.testing.assert_allclose(np.asarray(sharded), s["adv"], atol=1e-6)


def test_sgm_needs_hook():
  model = nnx.Linear(12, 3, rngs=nnx.Rngs(0))
  sur = attacks.Surrogate(lambda v, x, h=None: nnx.merge(*v)(x.reshape(x.shape[0], -1)))
  with pytest.raises(ValueError, match="branch_act hook"):
    attacks.run_attack(attacks.attack_config("sgm"), sur, nnx.split(model),
                       jnp.zeros((1, 2, 2, 3)), jnp.zeros((1,), jnp.int32), jax.random.key(0))
