"""GCC steps (D weight step vs arch step: who changes what, slow gate dynamics) and one-shot
pruning (kept counts, removed U-Net levels, binary search hitting the MACs budget, errors)."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from jaxvision.methods import gcc
from jaxvision.methods.gcc import pruning
from jaxvision.models import gan


def _leaves(model, which):
  return [np.asarray(x) for x in jax.tree.leaves(nnx.state(model, which))]


@pytest.fixture(scope="module")
def setup():
  r = nnx.Rngs(0)
  d_s = gan.PatchDiscriminator(1, rngs=r, widths=[4, 8], n_layers=1, gates=True)
  d_t = gan.PatchDiscriminator(1, rngs=r, widths=[4, 8], n_layers=1)
  k = jax.random.split(jax.random.key(0), 3)
  x, y, fake = (jax.random.uniform(kk, (2, 16, 16, 3), minval=-1, maxval=1) for kk in k)
  gap_t = gcc.teacher_gap(d_t, x, fake, "hinge")
  return d_s, x, y, fake, gap_t


def test_d_weight_step_leaves_alpha_and_arch_step_touches_only_alpha(setup):
  d_s, x, y, fake, gap_t = setup
  tx = optax.adam(2e-4, 0.5, 0.999)
  g, st = nnx.split(d_s)
  d_step = gcc.make_d_weight_step(g, tx, "hinge")
  opt = gcc.init_opt(tx, d_s, gcc.WEIGHTS)
  st1, opt, m = d_step(st, opt, x, y, fake)
  d1 = nnx.merge(g, st1)
  assert all((a == b).all() for a, b in zip(_leaves(d_s, gcc.ALPHA), _leaves(d1, gcc.ALPHA)))
  assert any((a != b).any() for a, b in zip(_leaves(d_s, gcc.WEIGHTS), _leaves(d1, gcc.WEIGHTS)))
  assert np.isfinite(float(m["d_loss"]))

  atx = optax.adam(1e-2, 0.9, 0.999)
  arch = gcc.make_arch_step(g, atx, "hinge")
  aopt = gcc.init_opt(atx, d1, gcc.ALPHA)
  st2, aopt, am = arch(st1, aopt, x, y, fake, gap_t)
  d2 = nnx.merge(g, st2)
  for a, b in zip(_leaves(d1, gcc.WEIGHTS), _leaves(d2, gcc.WEIGHTS)):
    np.testing.assert_array_equal(a, b)                      # bit-identical D weights
  assert any((a != b).any() for a, b in zip(_leaves(d1, gcc.ALPHA), _leaves(d2, gcc.ALPHA)))
  assert float(am["arch_loss"]) == pytest.approx(
      abs(float(am["gap_s"]) - float(gap_t)) + float(am["d_loss"]), rel=1e-5)


@pytest.mark.parametrize("lr, some_off", [(1e-4, False), (0.1, True)])
def test_gate_dynamics_30_arch_steps(setup, lr, some_off):
  d_s, x, y, fake, gap_t = setup
  tx = optax.adam(lr, 0.9, 0.999)
  g, st = nnx.split(d_s)
  arch = gcc.make_arch_step(g, tx, "hinge")
  opt = gcc.init_opt(tx, d_s, gcc.ALPHA)
  for _ in range(30):
    st, opt, _ = arch(st, opt, x, y, fake, gap_t)
  alphas = np.concatenate([np.asarray(a) for a in jax.tree.leaves(
      nnx.state(nnx.merge(g, st), gcc.ALPHA))])
  assert bool((alphas < 0.5).any()) == some_off
  if not some_off:
    assert alphas.min() > 1.0 - 30 * lr * 1.01                # Adam moves <= lr per step


def _set_unet_scales(m, seed=0):
  rng = np.random.default_rng(seed)
  for lv in m.levels:
    for name in ("down_bn", "up_bn"):
      bn = getattr(lv, name, None)
      if bn is not None:
        bn.scale[...] = jnp.asarray(rng.uniform(0.0, 1.0, bn.scale[...].shape), jnp.float32)


@pytest.fixture(scope="module")
def proto():
  m = nnx.eval_shape(lambda: gan.UnetGenerator(3, rngs=nnx.Rngs(0), ngf=8, num_downs=6,
                                                  use_dropout=False))
  m = nnx.merge(*[jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), p)
                  if i else p for i, p in enumerate(nnx.split(m))])
  _set_unet_scales(m)
  return m


def test_threshold_keeps_exactly_scores_above_tau(proto):
  groups = pruning.importance_groups(proto, "scale")
  # scale mode scores the BN layers: down levels 2..5 and up levels 6..2
  assert [g.name for g in groups] == [f"level{i}/down" for i in (2, 3, 4, 5)] + [
      f"level{i}/up" for i in (6, 5, 4, 3, 2)]
  assert [g.can_be_zero for g in groups] == [False] * 3 + [True] + [True, True] + [False] * 3
  tau = 0.45
  w = pruning.widths_at_threshold(proto, groups, tau)
  for g in groups:
    for e in g.entries:
      if w[e] != 0 or not g.can_be_zero:
        assert w[e] == int((g.scores > tau).sum())
  assert w[0] == 8 and w[5] in (64, 0)                 # d_1, d_N are not scored
  m = gan.rebuild(proto, w, abstract=True)             # runs with concat = enc + dec
  assert all(lv.up_conv.in_features == (w[lv.level - 1] if lv.deepest else
             w[lv.level - 1] + w[2 * 6 - lv.level - 1]) for lv in m.levels)


def test_level_removal_when_scores_vanish(proto):
  groups = pruning.importance_groups(proto, "scale")
  lo, hi = pruning.threshold_range(groups)
  keep_max = min(float(g.scores.max()) for g in groups if not g.can_be_zero)
  assert hi <= keep_max and lo == min(float(g.scores.min()) for g in groups)
  fl = pruning.floor_widths(proto, groups)
  assert fl[4] == fl[5] == fl[6] == fl[7] == 0          # levels 5, 6 removed
  assert fl[1:4] == [1, 1, 1] and fl[-3:] == [1, 1, 1]


def test_binary_search_hits_budget_and_errors(proto):
  shape = (64, 64, 3)
  full = pruning.count_macs(proto, input_shape=shape)
  target, tol = 0.5 * full, 0.05 * full
  res = pruning.search_threshold(proto, target, mode="scale", tolerance=tol, input_shape=shape)
  assert abs(res.macs - target) <= tol and res.full_macs == full
  assert res.macs == pruning.count_macs(proto, res.widths, input_shape=shape)
  student = gan.rebuild(proto, res.widths, abstract=True)
  assert student.widths == res.widths
  with pytest.raises(ValueError, match="below the .* one channel per layer allows"):
    pruning.search_threshold(proto, 1e3, mode="scale", tolerance=10.0, input_shape=shape)
  with pytest.raises(ValueError, match="above the unpruned"):
    pruning.search_threshold(proto, 2 * full, mode="scale", tolerance=tol, input_shape=shape)
  with pytest.raises(ValueError, match="does not support PatchDiscriminator"):
    pruning.importance_groups(gan.PatchDiscriminator(1, rngs=nnx.Rngs(0), widths=[2, 2],
                                                     n_layers=1), "scale")


def test_mobile_resnet_norm_groups_share_the_residual_width():
  m = gan.MobileResnetGenerator(3, rngs=nnx.Rngs(0), ngf=2, n_blocks=3)
  with pytest.raises(ValueError, match="mode='norm'"):
    pruning.importance_groups(m, "scale")
  groups = {g.name: g for g in pruning.importance_groups(m, "norm")}
  assert groups["residual"].entries == (2, 4, 6, 8)
  want = np.mean([pruning.conv_l1(l) for l in [m.down2] + [b.pw2 for b in m.blocks]], axis=0)
  np.testing.assert_allclose(groups["residual"].scores, want, rtol=1e-6)
  np.testing.assert_allclose(groups["up1"].scores,
                             np.abs(np.asarray(m.up1.kernel[...])).sum(axis=(0, 1, 3)))
  tau = float(np.median(groups["residual"].scores))
  w = pruning.widths_at_threshold(m, list(groups.values()), tau)
  assert len({w[i] for i in (2, 4, 6, 8)}) == 1
  assert w[2] == int((groups["residual"].scores > tau).sum())
  gan.rebuild(m, w, abstract=True)


def test_sparsity_subgradient_targets_and_values():
  d = gan.PatchDiscriminator(1, rngs=nnx.Rngs(0), widths=[2, 3], n_layers=1, in_channels=1)
  params = nnx.state(d, nnx.Param)
  grads = jax.tree.map(jnp.zeros_like, params)
  t = pruning.l1_targets(d, "scale")
  assert t == {"norms/0/scale": 1.0}
  out = pruning.add_l1_subgradient(grads, params, t, 1e-2)
  np.testing.assert_allclose(np.asarray(out["norms"][0]["scale"][...]),
                             1e-2 * np.sign(np.asarray(d.norms[0].scale[...])))
  assert float(jnp.abs(out["convs"][0]["kernel"][...]).max()) == 0.0
  tw = pruning.l1_targets(d, "weight", {"last": 1000.0})
  assert tw == {"convs/0/kernel": 1.0, "convs/1/kernel": 1.0, "last/kernel": 1000.0}
  out = pruning.add_l1_subgradient(grads, params, tw, 1e-3)
  np.testing.assert_allclose(np.asarray(out["last"]["kernel"][...]),
                             1.0 * np.sign(np.asarray(d.last.kernel[...])), rtol=1e-6)
  with pytest.raises(ValueError, match="unknown layers"):
    pruning.l1_targets(d, "weight", {"nope": 2.0})


def test_srresnet_binary_search_hits_budget_on_block_inner_widths():
  m = nnx.eval_shape(lambda: gan.SRResNet(3, rngs=nnx.Rngs(0), n_channels=8, n_blocks=4))
  m = nnx.merge(*[jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), p)
                  if i else p for i, p in enumerate(nnx.split(m))])
  rng = np.random.default_rng(1)
  for blk in m.blocks:
    blk.bn1.scale[...] = jnp.asarray(rng.uniform(0.0, 1.0, 8), jnp.float32)
  groups = pruning.importance_groups(m, "scale")
  assert [g.name for g in groups] == [f"block{b}/inner" for b in range(4)]
  assert [g.entries for g in groups] == [(1,), (2,), (3,), (4,)]
  with pytest.raises(ValueError, match="mode='scale'"):
    pruning.importance_groups(m, "norm")
  shape = (8, 8, 3)
  full = pruning.count_macs(m, input_shape=shape)
  floor = pruning.count_macs(m, [8, 1, 1, 1, 1], input_shape=shape)
  # an exactly reachable budget (tau = 0.5) + 1/4 of one inner channel's cost, tolerance 1/2
  w_half = pruning.widths_at_threshold(m, groups, 0.5)
  one = 8 * 8 * (8 * 9 + 1) + 8 * 8 * 8 * 9        # conv1 out channel + conv2 in channel
  assert pruning.count_macs(m, w_half, input_shape=shape) - pruning.count_macs(
      m, [w_half[0], w_half[1] - 1] + w_half[2:], input_shape=shape) == one
  target, tol = pruning.count_macs(m, w_half, input_shape=shape) + one / 4, one / 2
  assert floor < target < full
  res = pruning.search_threshold(m, target, mode="scale", tolerance=tol, input_shape=shape)
  assert abs(res.macs - target) <= tol and res.full_macs == full
  assert res.widths[0] == 8                                 # the trunk width is not pruned
  assert res.widths[1:] == [int((g.scores > res.threshold).sum()) for g in groups]
  assert res.macs == pruning.count_macs(m, res.widths, input_shape=shape)
  with pytest.raises(ValueError, match="below the .* one channel per layer allows"):
    pruning.search_threshold(m, floor / 2, mode="scale", tolerance=tol, input_shape=shape)
