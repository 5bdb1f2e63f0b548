"""Surgery: narrow nets from kept indices (spec §2 step 4, §3, §8 items 8-10)."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from jaxvision import flops
from jaxvision.core import roles
from jaxvision.methods.clr_rnf import PruneOptions, prune, random_model, surgery


def logits(model, x):
  """Eval-mode logits through one jitted forward. x: [B, H, W, 3]."""
  g, st = nnx.split(model)
  return np.asarray(jax.jit(lambda s, v: nnx.merge(g, s)(v, train=False))(st, x))


def _x(n=4, size=32, seed=0):
  return jnp.asarray(np.random.default_rng(seed).standard_normal((n, size, size, 3)), jnp.float32)


def _zero_removed(model, bn_paths_and_kept):
  """Original model with BN scale and bias of the removed channels set to 0."""
  g, st = nnx.split(model)
  pure = nnx.to_pure_dict(st)
  flat = surgery.flatten(pure)
  for bn, kept, n in bn_paths_and_kept:
    mask = np.zeros(n, bool)
    mask[kept] = True
    for p in ("scale", "bias"):
      v = np.array(flat[f"{bn}/{p}"])
      v[~mask] = 0.0
      flat[f"{bn}/{p}"] = jnp.asarray(v)
  nnx.replace_by_pure_dict(st, surgery.unflatten_into(pure, flat))
  return nnx.merge(g, st)


VGG_KW = {"width_multiplier": 0.125}
R20_KW = {"width_multiplier": 0.25, "shortcut": "A"}


@pytest.mark.parametrize("name,kw", [("vgg16", VGG_KW), ("resnet20", R20_KW)])
def test_all_filters_kept_is_identity(name, kw):
  m = random_model(name, 10, seed=1, **kw)
  narrow, res = prune(m, name, PruneOptions(pr_target=0.0, inherit_bn=True), 10, **kw)
  assert res.plan.widths == list(m.widths)
  a = surgery.flatten(nnx.to_pure_dict(nnx.state(m)))
  b = surgery.flatten(nnx.to_pure_dict(nnx.state(narrow)))
  assert a.keys() == b.keys()
  for k in a:
    np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]), err_msg=k)


def test_vgg_pruned_equals_original_with_removed_channels_zeroed():
  m = random_model("vgg16", 10, seed=2, **VGG_KW)
  narrow, res = prune(m, "vgg16", PruneOptions(pr_target=0.6, inherit_bn=True), 10, **VGG_KW)
  assert res.plan.widths != list(m.widths)
  zeroed = _zero_removed(m, [(f"bns/{i}", res.plan.index_sets[f"convs/{i}"], w)
                             for i, w in enumerate(m.widths)])
  x = _x()
  np.testing.assert_allclose(logits(narrow, x), logits(zeroed, x), atol=1e-5, rtol=1e-5)


def test_resnet_internal_channels_exact():
  m = random_model("resnet20", 10, seed=3, **R20_KW)
  narrow, res = prune(m, "resnet20", PruneOptions(pr_target=0.5, inherit_bn=True), 10, **R20_KW)
  units = [u for u in res.plan.index_sets]
  zeroed = _zero_removed(m, [(u.replace("conv1", "bn1"), res.plan.index_sets[u], w)
                             for u, w in zip(units, m.widths)])
  x = _x(seed=1)
  np.testing.assert_allclose(logits(narrow, x), logits(zeroed, x), atol=1e-5, rtol=1e-5)


def test_resnet50_aligned_residual_stream_exact():
  kw = {"width_multiplier": 1 / 16}
  m = random_model("resnet50", 10, seed=4, **kw)
  narrow, res = prune(m, "resnet50", PruneOptions(pr_target=0.4, residual_select="aligned"),
                      10, image_size=32, **kw)
  sets, layers = res.plan.index_sets, res.plan.layers
  flat = surgery.flatten(nnx.to_pure_dict(nnx.state(m)))
  bns = [(bn, sets[layers[bn][1]], flat[f"{bn}/scale"].shape[0])
         for bn in layers if bn.endswith(("bn1", "bn2", "bn3", "_bn"))]
  zeroed = _zero_removed(m, bns)
  x = _x(n=2, seed=2)
  np.testing.assert_allclose(logits(narrow, x), logits(zeroed, x), atol=1e-4, rtol=1e-4)
  # 'code' mode: the same counts but channel identities along the stream are not kept.
  narrow_code, res_code = prune(m, "resnet50", PruneOptions(pr_target=0.4), 10, image_size=32,
                                **kw)
  assert res_code.plan.widths == res.plan.widths


def _analytic_vgg(widths, num_classes=10):
  p, cin = 0, 3
  for w in widths:
    p += 9 * cin * w + w + 2 * w  # kernel, bias, BN affine
    cin = w
  return p + cin * num_classes + num_classes


def _analytic_resnet_cifar(inner, n, stage=(16, 32, 64), num_classes=10):
  p = 27 * stage[0] + 2 * stage[0]
  cin = stage[0]
  for j, w in enumerate(inner):
    s = stage[j // n]
    p += 9 * cin * w + 2 * w + 9 * w * s + 2 * s
    cin = s
  return p + cin * num_classes + num_classes


def test_surgery_counts_match_analytic_and_paper_baselines():
  vgg = flops.count("vgg16")
  r56 = flops.count("resnet56", shortcut="A")
  # README baselines (thop): 314.04M / 14.73M and 126.56M / 0.85M (within 0.01%).
  assert vgg["flops"] / 1e6 == pytest.approx(314.04, rel=1e-4)
  assert round(vgg["params"] / 1e6, 2) == 14.73
  assert r56["flops"] / 1e6 == pytest.approx(126.56, rel=1e-4)
  assert round(r56["params"] / 1e6, 2) == 0.85
  m = random_model("vgg16", 10, seed=5)
  res_w = prune(m, "vgg16", PruneOptions(pr_target=0.86, inherit_bn=False), 10)[0]
  c = flops.count(res_w)
  assert c["params"] == _analytic_vgg(res_w.widths)
  assert c["params"] / vgg["params"] < 0.2 and c["flops"] < vgg["flops"]
  m = random_model("resnet56", 10, seed=6, shortcut="A")
  narrow = prune(m, "resnet56", PruneOptions(pr_target=0.56), 10, shortcut="A")[0]
  assert flops.count(narrow)["params"] == _analytic_resnet_cifar(narrow.widths, 9)


def test_reinit_rules_vgg():
  m = random_model("vgg16", 10, seed=7, **VGG_KW)
  narrow, res = prune(m, "vgg16", PruneOptions(pr_target=0.5, inherit_bn=False), 10, **VGG_KW)
  st = surgery.flatten(nnx.to_pure_dict(nnx.state(narrow)))
  old = surgery.flatten(nnx.to_pure_dict(nnx.state(m)))
  for i, w in enumerate(res.plan.widths):
    np.testing.assert_array_equal(st[f"bns/{i}/scale"], np.ones(w))
    np.testing.assert_array_equal(st[f"bns/{i}/mean"], np.zeros(w))
    np.testing.assert_array_equal(st[f"convs/{i}/bias"], np.zeros(w))
  k1 = np.asarray(old["convs/1/kernel"])[:, :, res.plan.index_sets["convs/0"]]
  np.testing.assert_array_equal(st["convs/1/kernel"], k1[..., res.plan.index_sets["convs/1"]])
  np.testing.assert_array_equal(st["classifier/bias"], np.zeros(10))
  assert 0.005 < float(np.std(st["classifier/kernel"])) < 0.02


def test_resnet_reinit_only_bn1_and_googlenet_plan():
  m = random_model("resnet20", 10, seed=8, **R20_KW)
  narrow, _ = prune(m, "resnet20", PruneOptions(pr_target=0.5, inherit_bn=False), 10, **R20_KW)
  st = surgery.flatten(nnx.to_pure_dict(nnx.state(narrow)))
  old = surgery.flatten(nnx.to_pure_dict(nnx.state(m)))
  assert np.all(np.asarray(st["layer2/1/bn1/var"]) == 1.0)
  np.testing.assert_array_equal(st["layer2/1/bn2/var"], old["layer2/1/bn2/var"])
  g = random_model("googlenet", 10, seed=9, width_multiplier=0.125)
  gn, gres = prune(g, "googlenet", PruneOptions(pr_target=0.5), 10, width_multiplier=0.125)
  assert len(gres.units) == 27 and gres.lam == 0.0 and all(f == 1.0 for f in gres.f)
  assert gn.widths == gres.plan.widths and sum(gn.widths) < sum(g.widths)
  assert flops.count(gn)["params"] < flops.count(g)["params"]


def test_finetune_lowers_loss_on_pruned_tiny_net():
  m = random_model("vgg16", 10, seed=10, **VGG_KW)
  narrow, _ = prune(m, "vgg16", PruneOptions(pr_target=0.6), 10, **VGG_KW)
  gdef = roles.split(narrow)[0]
  tx = optax.sgd(0.05, momentum=0.9)
  ms = roles.model_state(narrow)
  state = {"step": jnp.zeros((), jnp.int32), "models": {"student": ms},
           "opt": {"student": tx.init(ms["params"])}, "extras": {}}
  step = jax.jit(roles.make_train_step(gdef, tx))
  rng = np.random.default_rng(0)
  batch = {"image": jnp.asarray(rng.standard_normal((32, 32, 32, 3)), jnp.float32),
           "label": jnp.asarray(rng.integers(0, 10, 32), jnp.int32)}
  losses = []
  for i in range(20):
    state, met = step(state, batch, jax.random.key(i))
    losses.append(float(met["loss"]))
  assert losses[-1] < losses[0]


def test_transfer_rejects_inconsistent_plan():
  m = random_model("vgg16", 10, seed=11, **VGG_KW)
  _, res = prune(m, "vgg16", PruneOptions(pr_target=0.5), 10, **VGG_KW)
  bad = surgery.Plan(list(res.plan.widths), dict(res.plan.index_sets), dict(res.plan.layers))
  bad.widths[3] += 1
  from jaxvision.methods.clr_rnf.pruning import build_fn
  with pytest.raises(ValueError, match="shape mismatch"):
    surgery.narrow_model(m, bad, build_fn("vgg16", 10, **VGG_KW))


def test_ablation_options():
  from jaxvision.methods.clr_rnf import rnf
  m = random_model("vgg16", 10, seed=12, **VGG_KW)
  _, uni = prune(m, "vgg16", PruneOptions(pr_target=0.5, ranking="uniform"), 10, **VGG_KW)
  assert uni.plan.widths == [w // 2 for w in m.widths]
  _, mag = prune(m, "vgg16", PruneOptions(pr_target=0.5, ranking="magnitude"), 10, **VGG_KW)
  _, lam0 = prune(m, "vgg16", PruneOptions(pr_target=0.5, lam=0.0), 10, **VGG_KW)
  _, clr = prune(m, "vgg16", PruneOptions(pr_target=0.5), 10, **VGG_KW)
  assert mag.keep == lam0.keep and mag.keep != clr.keep and clr.lam == 0.5
  _, l1 = prune(m, "vgg16", PruneOptions(pr_target=0.5, selection="l1"), 10, **VGG_KW)
  k0 = rnf.kernel_to_filters(np.asarray(nnx.state(m)["convs"][0]["kernel"][...]))
  np.testing.assert_array_equal(l1.plan.index_sets["convs/0"], rnf.l1_select(k0, clr.keep[0]))
  _, r1 = prune(m, "vgg16", PruneOptions(pr_target=0.5, selection="random", seed=3), 10, **VGG_KW)
  _, r2 = prune(m, "vgg16", PruneOptions(pr_target=0.5, selection="random", seed=3), 10, **VGG_KW)
  assert r1.plan.kept() == r2.plan.kept() and r1.plan.widths == clr.plan.widths
