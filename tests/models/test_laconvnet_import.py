"""Official LaConvNet REC checkpoint import (laconv.md §2-3, §6).

The official repo (github.com/luogen1996/LaConvNet) needs SAN's CUDA `Aggregation` op and
ships no CPU path, and its weights are not available offline. So
tests/laconvnet_torch_mirror.py holds a small PyTorch module that keeps the official module
names and forward (REC `Net`: lang_encoder LSTM_SA, visual_encoder LaConvNet,
multi_scale_manner PAFPN, REChead), with the aggregation written as unfold. It is randomly initialised, saved the way `train.py` saves ({'state_dict': ...} with a
DDP 'module.' prefix), imported into `laconvnet_vl`, and both nets are run on the same input.
"""
import re

import jax
import numpy as np
import pytest
from flax import nnx

from jaxvision.methods.laconv.model import LaConvVL
from jaxvision.models import laconvnet as L
from jaxvision.models.torch_import import (CheckpointMismatchError, load_torch_checkpoint,
                                           maybe_load_pretrained)

torch = pytest.importorskip("torch")
from laconvnet_torch_mirror import (  # noqa: E402  (the torch mirror of the official net)
    DIMS, EMBED, GROUPS, HEADS, HIDDEN, KERNELS, NECK_N, PACKS, REC_HID, VOCAB, Net, randomize,
    sample_inputs, save_official, tiny_spec)

# ----------------------------------------------------------------------------- fixtures
pytestmark = pytest.mark.usefixtures("fast_compiles")  # compile-bound tiny programs


def _ours():
  build = lambda: nnx.split(LaConvVL(  # noqa: E731
      rngs=nnx.Rngs(jax.random.key(1, impl="rbg")), vocab_size=VOCAB, embed_dim=EMBED,
      text_dim=HIDDEN, lang_heads=HEADS, spec=tiny_spec(), neck_depth=NECK_N, rec_hidden=REC_HID,
      head="rec"))
  return nnx.merge(*jax.jit(build)())


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
  torch.manual_seed(0)
  net = Net(VOCAB, EMBED, HIDDEN, HEADS, DIMS, GROUPS, PACKS, KERNELS, NECK_N, REC_HID)
  randomize(net, torch.Generator().manual_seed(1))
  net.eval()
  path = save_official(net, tmp_path_factory.mktemp("laconv") / "det_best.pth")
  model = _ours()
  L.load_official_checkpoint(model, str(path))
  return net, model, net.state_dict()


@pytest.fixture(scope="module")
def outputs(pair):
  net, model, _ = pair
  img, ids = sample_inputs()
  with torch.no_grad():
    t_feat, t_maps, t_raw, t_pred = net(torch.from_numpy(img).permute(0, 3, 1, 2),
                                torch.from_numpy(ids).long())
  g, st = nnx.split(model)

  @jax.jit
  def run(st, img, ids):
    m = nnx.merge(g, st)
    t, mask = m.language(ids)
    stages = m.visual.trunk(img, t, mask)
    return (t, mask), stages + list(m.visual.neck(stages[2:], False)), m(img, ids)

  (j_feat, j_mask), j_maps, j_out = run(st, img, ids)
  return dict(ids=ids, t_feat=t_feat.numpy(), t_raw=t_raw.permute(0, 2, 3, 1).numpy(),
              t_maps=[a.permute(0, 2, 3, 1).numpy() for a in t_maps],
              j_maps=[np.asarray(a) for a in j_maps],
              t_pred=t_pred.numpy(), j_feat=np.asarray(j_feat), j_mask=np.asarray(j_mask),
              j_raw=np.asarray(j_out["raw"]), j_boxes=np.asarray(j_out["boxes"]),
              j_obj=np.asarray(j_out["obj"]))


# ----------------------------------------------------------------------------- tests
def test_official_names_closed_form():
  n = L.official_torch_name
  assert n("stem/proj/conv") == "visual_encoder.stem.conv.conv"
  assert n("stages/0/blocks/1/laconv/gen") == "visual_encoder.blocks.0.1.conv1.linear"
  assert n("stages/2/down/proj/bn") == "visual_encoder.blocks.2.0.conv.bn"
  assert n("visual/stages/2/blocks/0/cond/q") == \
      "visual_encoder.blocks.2.1.cond_generator.mha.linear_q"
  assert n("stages/3/blocks/0/bn1") == "visual_encoder.blocks.3.1.block1.1"
  assert n("stages/3/blocks/0/bn") == "visual_encoder.blocks.3.1.bn1"
  assert n("neck/td/c3_p4/m/1/conv2/bn") == "multi_scale_manner.C3_p4.m.1.conv2.bn"
  assert n("neck/bu_conv1/conv") == "multi_scale_manner.bu_conv1.conv"
  assert n("head/conv2/conv") == "head.reg_convs.0.1.conv"
  assert n("head/obj") == "head.obj_preds.0"
  assert n("language/sa/0/fc1") == "lang_encoder.sa_list.0.ffn.mlp.fc.linear"
  for path in ("head/vflat/fc", "fusion/0/proj/conv", "head/aspp/b1/conv"):
    with pytest.raises(ValueError, match="no counterpart"):
      n(path)


def test_language_features_match(outputs):
  o = outputs
  np.testing.assert_array_equal(o["j_mask"], o["ids"] == 0)
  valid = ~o["j_mask"]  # ours zeroes padded words; the official keeps them (always masked)
  np.testing.assert_allclose(o["j_feat"][valid], o["t_feat"][valid], atol=1e-4, rtol=0)
  assert np.abs(o["t_feat"][valid]).max() > 0.1


def test_stage_and_neck_maps_match_official(outputs):
  """The 5 trunk stage maps (strides 2..32) and the 3 PAFPN outputs, NHWC vs NCHW."""
  o = outputs
  sizes = [(32, 8), (16, 16), (8, 32), (4, 64), (2, 128), (8, 32), (4, 64), (2, 128)]
  assert len(o["j_maps"]) == len(o["t_maps"]) == 8
  for i, (a, b, (hw, c)) in enumerate(zip(o["j_maps"], o["t_maps"], sizes)):
    assert a.shape == b.shape == (2, hw, hw, c), i
    np.testing.assert_allclose(a, b, atol=1e-4, rtol=0, err_msg=f"map {i}")
    assert np.abs(b[0] - b[1]).max() > 1e-2, i  # input-dependent well above the tolerance


def test_rec_outputs_match_official(outputs):
  o = outputs
  assert o["j_raw"].shape == o["t_raw"].shape == (2, 2, 2, 5)
  np.testing.assert_allclose(o["j_raw"], o["t_raw"], atol=1e-4, rtol=0)
  assert np.abs(o["t_raw"]).max() > 0.05  # not a degenerate all-zero output
  # Official inference: xyxy box + sigmoid score of the highest-objectness cell (input pixels).
  best = o["j_obj"].argmax(-1)
  cxcywh = o["j_boxes"][np.arange(2), best]
  xyxy = np.concatenate([cxcywh[:, :2] - cxcywh[:, 2:] / 2, cxcywh[:, :2] + cxcywh[:, 2:] / 2], 1)
  np.testing.assert_allclose(xyxy, o["t_pred"][:, :4], atol=32 * 1e-4, rtol=1e-4)
  np.testing.assert_allclose(jax.nn.sigmoid(o["j_obj"][np.arange(2), best]), o["t_pred"][:, 4],
                             atol=1e-4)


def test_strict_load_names_missing_unexpected_and_shape(pair):
  _, model, sd = pair
  bad = dict(sd)
  bad.pop("visual_encoder.blocks.2.1.conv1.linear.weight")
  bad["head.cls_preds.0.weight"] = torch.zeros(1)
  bad["lang_encoder.embedding.weight"] = torch.zeros(VOCAB + 1, EMBED)
  with pytest.raises(CheckpointMismatchError) as e:
    L.load_official_checkpoint(model, bad)
  msg = str(e.value)
  assert "missing (1): visual_encoder.blocks.2.1.conv1.linear.weight" in msg
  assert "unexpected (1): head.cls_preds.0.weight" in msg
  assert "lang_encoder.embedding.weight: checkpoint (21, 12) vs model (20, 12)" in msg
  assert "att_flat" not in msg  # the unused sentence head is dropped on purpose


def test_generic_loader_on_laconvnet(pair, tmp_path):
  """torch_import.load_torch_checkpoint uses LaConvNet.torch_naming_rules: the visual keys load
  (here doubled values), lang_encoder keys are reported as unexpected."""
  _, model, sd = pair
  net = model.visual
  with pytest.raises(CheckpointMismatchError, match=r"unexpected \(\d+\): lang_encoder\."):
    load_torch_checkpoint(net, sd)
  before = {k: np.asarray(v.get_value()) for k, v, *_ in L.official_torch_tensors(net)}
  visual = {k: 2 * v if v.is_floating_point() else v for k, v in sd.items()
            if not k.startswith("lang_encoder.")}
  load_torch_checkpoint(net, visual)  # naming auto-detected: 'official'
  after = {k: np.asarray(v.get_value()) for k, v, *_ in L.official_torch_tensors(net)}
  assert after.keys() == before.keys() and len(after) > 100
  for k in before:
    np.testing.assert_allclose(after[k], 2 * before[k], rtol=1e-6, err_msg=k)
  # The config hook (models.<role>.init.torch_checkpoint) on a file restores the weights.
  path = tmp_path / "visual.pth"
  torch.save({k: v for k, v in sd.items() if not k.startswith("lang_encoder.")}, path)
  maybe_load_pretrained(net, {"init": {"torch_checkpoint": str(path)}})
  for k, v, *_ in L.official_torch_tensors(net):
    np.testing.assert_array_equal(np.asarray(v.get_value()), before[k], err_msg=k)
  # The full checkpoint into the bare LaConvNet, language keys skipped on request.
  L.load_official_checkpoint(net, visual, ignore=("lang_encoder.",))
  L.load_official_checkpoint(net, sd, ignore=("lang_encoder.",))
  for k, v, *_ in L.official_torch_tensors(net):
    np.testing.assert_array_equal(np.asarray(v.get_value()), before[k], err_msg=k)
  # laconvnet_vl: the config hook on the official file (module. prefix, EMA dict) loads every
  # key, language encoder included, through the model's own loader.
  full = {k: v.clone() for k, v in sd.items()}
  lang = "lang_encoder.embedding.weight"
  emb = model.language.embedding
  emb.set_value(emb.get_value() * 0)
  path = tmp_path / "det_best.pth"
  torch.save({"state_dict": {"module." + k: v for k, v in full.items()}}, path)
  maybe_load_pretrained(model, {"init": {"torch_checkpoint": str(path)}})
  np.testing.assert_array_equal(np.asarray(emb.get_value()), full[lang].numpy())
  with pytest.raises(ValueError, match="naming 'official' only"):
    load_torch_checkpoint(model, sd, naming="torchvision")


def _official_proc_ref(ref, token_to_ix, max_token):
  """datasets/dataloader.py `proc_ref`: ids (UNK for unknown words), zero padded, truncated."""
  ix = np.zeros(max_token, np.int64)
  words = re.sub(r"([.,'!?\"()*#:;])", "", ref.lower()).replace("-", " ").replace("/", " ")
  for i, w in enumerate(words.split()):
    ix[i] = token_to_ix.get(w, token_to_ix["[UNK]"])
    if i + 1 == max_token:
      break
  return ix


def test_official_vocab_ids_match_the_official_tokenizer():
  pytest.importorskip("tokenizers")
  from jaxvision.methods.laconv.language import WordTokenizer  # noqa: PLC0415
  refs = ["The man in red, left!", "man on the LEFT-most bench", "red/blue \"thing\" (left)",
          "bench", "a man"]
  vocab = L.official_vocab(refs)
  assert list(vocab)[:9] == ["[PAD]", "[UNK]", "[CLS]", "the", "man", "in", "red", "left", "on"]
  assert [vocab[w] for w in ("most", "bench", "blue", "thing", "a")] == [9, 10, 11, 12, 13]
  assert len(vocab) == 14
  tok = WordTokenizer(vocab, max_len=4)
  queries = ["the man on the blue bench", "zebra left", "Red-man"]
  enc = tok.encode(queries)
  want = np.stack([_official_proc_ref(q, vocab, 4) for q in queries])
  np.testing.assert_array_equal(enc.ids, want)
  np.testing.assert_array_equal(enc.mask, want == 0)


def test_official_s_key_set_matches():
  """LaConvNet-S REC at the official sizes: our tensor list == the official state_dict keys and
  shapes (meta tensors, nothing allocated)."""
  with torch.device("meta"):
    net = Net(100, 300, 512, 8, (16, 64, 128, 256, 512), (4, 4, 8, 8, 16), (8, 4, 2, 1, 1),
              ((3, 5), (7,), (7, 7), (7, 7, 7, 7), (7,)), 3, 256)
  want = {k: tuple(v.shape) for k, v in net.state_dict().items()
          if not k.endswith("num_batches_tracked") and not k.startswith(L.OFFICIAL_UNUSED)}
  model = nnx.eval_shape(lambda: LaConvVL(rngs=nnx.Rngs(0), vocab_size=100, variant="S"))
  ours = {}
  for k, _, conv, shape in L.official_torch_tensors(model):
    got = want.get(k)
    ours[k] = got if got is not None and got[:2] == shape and got[2:] == (1, 1) else shape
  assert ours == want
