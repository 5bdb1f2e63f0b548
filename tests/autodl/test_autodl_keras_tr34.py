"""Keras ThinResNet-34 import (DeepWisdom's thin_resnet34.h5): a synthetic width-reduced
weights file written with h5py in Keras 2's save_weights layout (layer_names, per-layer
weight_names, datasets under the TF variable names) loads into our net, whose embedding
and logits match an independent torch.nn.functional forward of the same arrays (Keras
'same' padding, BN eps 1e-3, GhostVLAD) within 1e-4; strict errors name the bad layer;
the 124/100-layer freezing rule maps onto our modules and really freezes them in the
speech learner."""
import types

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")
torch = pytest.importorskip("torch")
F = torch.nn.functional

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from flax import nnx  # noqa: E402

from jaxvision.autodl.solution import meta_learner, nets, pretrained  # noqa: E402
from jaxvision.autodl.solution.learners import SpeechLearner  # noqa: E402

WM = 0.0625                      # widths [4, 3,3,6, 6,6,8, 8,8,8, 16,16,16, 32, 32]
NF, T, K = 257, 24, 5            # 257 STFT bins -> 7 rows for x_fc, as the real model
CL, GH = 2, 1                    # GhostVLAD clusters (DeepWisdom: 8 + 2)


def _keras_weights(rng, widths, k_pred):
  """[(layer name, [(TF variable name, array)])] of vggvox_resnet2d_icassp (resnet34s,
  gvlad, softmax), in model.layers order, with weightless layers interleaved."""
  conv = lambda kh, kw, ci, co: rng.normal(0, np.sqrt(2.0 / (kh * kw * ci)), (kh, kw, ci, co))
  bn = lambda c: [0.5 + rng.random(c), 0.1 * rng.normal(size=c), 0.1 * rng.normal(size=c),
                  0.5 + rng.random(c)]
  out, n_act = [("input", [])], [0]

  def add(name, arrays, names):
    out.append((name, [(f"{name}/{v}:0", a.astype(np.float32)) for v, a in zip(names, arrays)]))

  def conv_bn(name, *shape):
    add(name, [conv(*shape)], ["kernel"])
    add(name + "/bn", bn(shape[-1]), ["gamma", "beta", "moving_mean", "moving_variance"])
    n_act[0] += 1
    out.append((f"activation_{n_act[0]}", []))  # Keras' unique auto names

  conv_bn("conv1_1/3x3_s1", 7, 7, 1, widths[0])
  out.append(("max_pooling2d_1", []))
  cin = widths[0]
  for s, nb in enumerate((2, 3, 3, 3)):
    f1, f2, f3 = widths[1 + 3 * s: 4 + 3 * s]
    for b in range(nb):
      c = f"conv{s + 2}_{'abc'[b]}"
      conv_bn(f"{c}_1x1_reduce", 1, 1, cin, f1)
      conv_bn(f"{c}_3x3", 3, 3, f1, f2)
      add(f"{c}_1x1_increase", [conv(1, 1, f2, f3)], ["kernel"])
      if b == 0:
        add(f"{c}_1x1_proj", [conv(1, 1, cin, f3)], ["kernel"])
      add(f"{c}_1x1_increase/bn", bn(f3), ["gamma", "beta", "moving_mean", "moving_variance"])
      if b == 0:
        add(f"{c}_1x1_proj/bn", bn(f3), ["gamma", "beta", "moving_mean", "moving_variance"])
      n_act[0] += 1
      out += [(f"add_{n_act[0]}", []), (f"activation_{n_act[0]}", [])]
      cin = f3
  emb = widths[-1]
  out.append(("mpool2", []))
  add("x_fc", [conv(7, 1, cin, emb), 0.1 * rng.normal(size=emb)], ["kernel", "bias"])
  add("gvlad_center_assignment", [conv(7, 1, cin, CL + GH), 0.1 * rng.normal(size=CL + GH)],
      ["kernel", "bias"])
  add("gvlad_pool", [rng.normal(size=(CL + GH, emb))], ["centers"])
  add("fc6", [conv(1, 1, CL * emb, emb)[0, 0], 0.1 * rng.normal(size=emb)], ["kernel", "bias"])
  add("prediction", [conv(1, 1, emb, k_pred)[0, 0]], ["kernel"])
  return out


def _write_h5(path, layers, model_weights=False):
  """Keras 2 save_weights layout (a full-model save nests it under 'model_weights')."""
  with h5py.File(path, "w") as f:
    g = f.create_group("model_weights") if model_weights else f
    g.attrs["layer_names"] = [n.encode("utf8") for n, _ in layers]
    g.attrs["backend"], g.attrs["keras_version"] = b"tensorflow", b"2.2.4"
    for name, ws in layers:
      lg = g.create_group(name)
      lg.attrs["weight_names"] = [w.encode("utf8") for w, _ in ws]
      for w, a in ws:
        lg.create_dataset(w, data=a)
  return str(path)


def _same_conv(x, k, stride=1, bias=None, padding="same"):
  """Keras Conv2D on NCHW torch tensors: kernel HWIO; 'same' pads (k-1)//2 before."""
  w = torch.from_numpy(np.ascontiguousarray(k.transpose(3, 2, 0, 1)))
  if padding == "same":
    pads = []
    for d, kk in ((3, k.shape[1]), (2, k.shape[0])):  # F.pad order: last dim first
      o = -(-x.shape[d] // stride)
      tot = max((o - 1) * stride + kk - x.shape[d], 0)
      pads += [tot // 2, tot - tot // 2]
    x = F.pad(x, pads)
  b = None if bias is None else torch.from_numpy(bias)
  return F.conv2d(x, w, b, stride=stride)


def _reference(w, x, aggregation="gvlad", fc6=None):
  """Independent forward of the Keras model from the arrays `w` {layer: [arrays]}.
  x: [B, F, T] -> (embedding, logits with the file's prediction kernel)."""
  def bn(h, name):
    g, b, m, v = (torch.from_numpy(a) for a in w[name])
    return F.batch_norm(h, m, v, g, b, training=False, eps=1e-3)
  h = torch.from_numpy(x)[:, None]                                  # NCHW, C = 1
  h = F.relu(bn(_same_conv(h, w["conv1_1/3x3_s1"][0]), "conv1_1/3x3_s1/bn"))
  h = F.max_pool2d(h, 2, 2)
  for s, nb in enumerate((2, 3, 3, 3)):
    for b in range(nb):
      c, st = f"conv{s + 2}_{'abc'[b]}", (2 if s > 0 and b == 0 else 1)
      y = F.relu(bn(_same_conv(h, w[f"{c}_1x1_reduce"][0], st, padding="valid"),
                    f"{c}_1x1_reduce/bn"))
      y = F.relu(bn(_same_conv(y, w[f"{c}_3x3"][0]), f"{c}_3x3/bn"))
      y = bn(_same_conv(y, w[f"{c}_1x1_increase"][0], padding="valid"), f"{c}_1x1_increase/bn")
      sc = h if b else bn(_same_conv(h, w[f"{c}_1x1_proj"][0], st, padding="valid"),
                          f"{c}_1x1_proj/bn")
      h = F.relu(y + sc)
  h = F.max_pool2d(h, (3, 1), (2, 1))
  feat = F.relu(_same_conv(h, *w["x_fc"][:1], bias=w["x_fc"][1], padding="valid"))[:, :, 0]
  feat = feat.permute(0, 2, 1)                                      # [B, T', D]
  if aggregation == "gvlad":
    k, kb = w["gvlad_center_assignment"]
    a = torch.softmax(_same_conv(h, k, bias=kb, padding="valid")[:, :, 0].permute(0, 2, 1), -1)
    c = torch.from_numpy(w["gvlad_pool"][0])
    res = (a[..., None] * (feat[:, :, None, :] - c[None, None])).sum(1)[:, :CL]
    res = res / torch.sqrt(torch.clamp((res ** 2).sum(-1, keepdim=True), min=1e-12))
    g = res.reshape(res.shape[0], -1)
    fk, fb = w["fc6"]
  else:
    g = feat.mean(1)
    fk, fb = fc6
  e = F.relu(g @ torch.from_numpy(fk) + torch.from_numpy(fb))
  return e.numpy(), (e @ torch.from_numpy(w["prediction"][0])).numpy()


def _make(aggregation="gvlad", **kw):
  return lambda: nets.ThinResNet34(K, rngs=nnx.Rngs(0), n_freq=NF, width_multiplier=WM,
                                   aggregation=aggregation, vlad_clusters=CL,
                                   ghost_clusters=GH, **kw)


@pytest.fixture(scope="module")
def h5(tmp_path_factory):
  rng = np.random.default_rng(0)
  layers = _keras_weights(rng, nets.ThinResNet34.default_widths(WM), K)
  d = tmp_path_factory.mktemp("keras")
  x = rng.normal(size=(2, NF, T)).astype(np.float32)
  return types.SimpleNamespace(layers=layers, w={n: [a for _, a in ws] for n, ws in layers if ws},
                               pairs={n: ws for n, ws in layers if ws},
                               path=_write_h5(d / "thin_resnet34.h5", layers),
                               full=_write_h5(d / "full_model.h5", layers, model_weights=True),
                               dir=d, x=x)


def test_forward_matches_independent_keras_reference(h5):
  want_e, want_z = _reference(h5.w, h5.x)
  m = nnx.eval_shape(_make())                      # abstract: only the load gives values
  assert pretrained.load_keras_tr34(m, h5.full) == "head loaded"
  assert not any(isinstance(v, jax.ShapeDtypeStruct) for v in jax.tree.leaves(nnx.state(m)))
  xj = jnp.asarray(h5.x[..., None])
  e, z = np.asarray(m.embed(xj)), np.asarray(m(xj))
  assert e.shape == (2, 32) and (e > 0).any()
  np.testing.assert_allclose(e, want_e, rtol=0, atol=1e-4 * max(1.0, np.abs(want_e).max()))
  np.testing.assert_allclose(z, want_z, rtol=0, atol=1e-4 * max(1.0, np.abs(want_z).max()))
  # 'avg' keeps its own fc6 (random) and the task head when the file's head differs
  m2 = _make("avg")()
  m2.fc = nnx.Linear(32, K + 1, use_bias=False, rngs=nnx.Rngs(3))
  fc6 = (np.array(m2.fc6.kernel.get_value()), np.array(m2.fc6.bias.get_value()))
  head = np.asarray(m2.fc.kernel.get_value())
  note = pretrained.load_keras_tr34(m2, h5.path)
  assert "fc6 random init" in note and f"head random init (file prediction (32, {K})" in note
  np.testing.assert_array_equal(np.asarray(m2.fc.kernel.get_value()), head)
  np.testing.assert_array_equal(np.asarray(m2.fc6.kernel.get_value()), fc6[0])
  want_avg, _ = _reference(h5.w, h5.x, "avg", fc6)
  got = np.asarray(m2.embed(xj))
  np.testing.assert_allclose(got, want_avg, rtol=0, atol=1e-4 * max(1.0, np.abs(want_avg).max()))


def test_strict_errors_name_the_layer(h5):
  m = nnx.eval_shape(_make())
  drop = [(n, ws) for n, ws in h5.layers if n != "conv3_b_3x3"]
  with pytest.raises(ValueError, match=r"missing layers \['conv3_b_3x3'\]"):
    pretrained.load_keras_tr34(m, _write_h5(h5.dir / "missing.h5", drop))
  extra = h5.layers + [("dense_9", [("dense_9/kernel:0", np.zeros((2, 2), np.float32))])]
  with pytest.raises(ValueError, match=r"unexpected layers \['dense_9'\]"):
    pretrained.load_keras_tr34(m, _write_h5(h5.dir / "extra.h5", extra))
  swap = [(n, ws[::-1] if n == "conv2_a_3x3/bn" else ws) for n, ws in h5.layers]
  with pytest.raises(ValueError, match=r"conv2_a_3x3/bn weight .*moving_variance.* gamma"):
    pretrained.load_keras_tr34(m, _write_h5(h5.dir / "swap.h5", swap))
  wide = nnx.eval_shape(lambda: nets.ThinResNet34(K, rngs=nnx.Rngs(0), n_freq=NF,
                                                  width_multiplier=0.125, vlad_clusters=CL,
                                                  ghost_clusters=GH))
  with pytest.raises(ValueError, match=r"conv1_1/3x3_s1/kernel has shape \(7, 7, 1, 4\).*"
                                       r"tr34_width_multiplier=1.0"):
    pretrained.load_keras_tr34(wide, h5.pairs)
  with pytest.raises(ValueError, match="tr34_features='stft' .*tr34_n_mels between 226 and 257"):
    pretrained.load_keras_tr34(nnx.eval_shape(
        lambda: nets.ThinResNet34(K, rngs=nnx.Rngs(0), n_freq=40, width_multiplier=WM)), h5.pairs)
  with pytest.raises(ValueError, match="bn_epsilon=0.001"):
    pretrained.load_keras_tr34(nnx.eval_shape(_make(bn_epsilon=1e-5)), h5.pairs)
  with pytest.raises(ValueError, match="no such file"):
    pretrained.read_keras_h5(str(h5.dir / "nope.h5"))
  with pytest.raises(ValueError, match="speech.tr34_width_multiplier=1.0 and "
                                       "speech.tr34_features='stft'"):
    meta_learner.options({"speech": {"tr34_weights": h5.path}})
  full = meta_learner.options({"speech": {"tr34_weights": h5.path, "tr34_features": "stft",
                                          "tr34_width_multiplier": 1.0, "tr34_n_mels": 257}})
  assert meta_learner.weights(full)["thin_resnet34"].startswith("keras thin_resnet34.h5")


def test_keras_layer_order_and_freezing_rule():
  layers = pretrained.keras_tr34_layers()
  # input, conv, bn, relu, pool; 4 conv blocks x 12 + 7 identity blocks x 10 layers
  assert len(layers) == 5 + 4 * 12 + 7 * 10 + 5 and layers[123][0] == "mpool2"
  m = nnx.eval_shape(_make())
  trunk = ["conv1", "bn1"] + [f"layers/{i}/{n}" for i in range(11) for n in
                              ("conv1", "bn1", "conv2", "bn2", "conv3")
                              + (("proj", "bn3", "proj_bn") if i in (0, 2, 5, 8) else ("bn3",))]
  assert pretrained.tr34_frozen_paths(m, 124) == trunk and len(trunk) == 2 + 11 * 6 + 4 * 2
  # layer 100 is conv5_a_1x1_proj/bn (stage 5's first block is layers/8)
  assert pretrained.tr34_frozen_paths(m, 100) == trunk[:trunk.index("layers/8/proj_bn")]
  assert pretrained.tr34_frozen_count(37) == 124 and pretrained.tr34_frozen_count(36) == 100
  assert pretrained.describe_tr34("") == "random init"


def test_speech_learner_loads_reports_and_freezes(h5):
  opts = meta_learner.options({"speech": {"tr34_width_multiplier": WM, "tr34_frames": [16],
                                          "tr34_aggregation": "gvlad"}})
  opts["speech"].update(tr34_weights=h5.path, tr34_features="stft")  # past options()' check
  md = types.SimpleNamespace(get_output_size=lambda: K, size=lambda: 64)
  # the learner's net has 8+2 clusters: the file's 2+1 GhostVLAD must be refused by shape
  with pytest.raises(ValueError, match="gvlad_center_assignment/kernel"):
    SpeechLearner(md, opts).build_tr34(0)
  opts["speech"]["tr34_aggregation"] = "avg"
  ln = SpeechLearner(md, opts)
  assert ln.init_notes() == {"thin_resnet34": f"keras thin_resnet34.h5 (weights file {h5.path}; "
                                              "first 100 Keras layers frozen)"}
  tr = ln._tr34_trainer(fresh=False)
  assert "head loaded" in ln.tr34_head_note
  # frozen: 32 convs (a kernel each) and 31 BNs (scale, bias; mean, var): stem, layers
  # 0-7 (3 convs + 3 BNs, projections in 0, 2, 5), layers/8 without its proj_bn
  n_conv, n_bn = 1 + 8 * 3 + 3 + 4, 1 + 8 * 3 + 3 + 3
  assert tr.n_frozen == n_conv + 4 * n_bn == 156
  before = jax.tree.map(lambda a: np.array(a, copy=True), (tr.params, tr.rest))
  rng = np.random.default_rng(1)
  x, y = rng.normal(size=(8, NF, 16, 1)).astype(np.float32), np.eye(K)[rng.integers(0, K, 8)]
  tr.batch_size = 8
  tr.fit(x, y.astype(np.float32), max_steps=1)
  st = nnx.merge(tr.gdef, tr.params, tr.rest)
  old = nnx.merge(tr.gdef, *before)
  for path in ("layers/8/conv3", "layers/8/bn3", "layers/7/bn2"):  # frozen
    a, b = pretrained._module(st, path), pretrained._module(old, path)
    for name in ("kernel", "scale", "mean", "var"):
      if hasattr(a, name):
        np.testing.assert_array_equal(np.asarray(getattr(a, name).get_value()),
                                      np.asarray(getattr(b, name).get_value()))
  for path, name in (("layers/8/proj_bn", "scale"), ("layers/8/proj_bn", "mean"),
                     ("layers/9/conv1", "kernel"), ("x_fc", "kernel")):  # trainable
    assert not np.array_equal(np.asarray(getattr(pretrained._module(st, path), name).get_value()),
                              np.asarray(getattr(pretrained._module(old, path), name).get_value()))
  # the 'stft' input: 257 |STFT| rows (n_fft 512, win 400, hop 160), each frame standardised
  wav = rng.normal(size=4000).astype(np.float16)
  spec = ln._spec((None, wav))
  assert ln.tr34_n_freq() == NF and spec.shape == (NF, 16)
  mag = np.abs(__import__("librosa").stft(wav.astype(np.float32), n_fft=512, win_length=400,
                                          hop_length=160))[:, :16]
  np.testing.assert_allclose(spec, (mag - mag.mean(0)) / (mag.std(0) + 1e-5), atol=2e-2)
  np.testing.assert_allclose(spec.astype(np.float32).std(0), 1.0, atol=1e-2)
  opts["random_init"] = True  # ablation (a): random init, nothing frozen, warm starts kept
  a = SpeechLearner(md, opts)
  assert a.init_notes() == {"thin_resnet34": "random init"} and not a.no_warmstart
  opts["random_init"], opts["no_warmstart"] = False, True  # (a) widened
  assert SpeechLearner(md, opts).init_notes() == {"thin_resnet34": "random init"}
