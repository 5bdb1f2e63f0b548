"""ThinResNet-34 speech learner: output shape and the full-width parameter count against a
count by hand from the layer list; the speech schedule (TR34 at call 2 when K < 10, at
call 3 otherwise; first-round epochs; growing crops); one real cycle on the tiny speech
set in which TR34 rounds are trained, scored and ensembled."""
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxvision.autodl import data, demo_data
from jaxvision.autodl.solution import Model, meta_learner, nets
from jaxvision.autodl.solution.learners import SpeechLearner
from jaxvision.evaluators import autodl as ev


def _hand_count(num_classes, aggregation="avg", clusters=8, ghosts=2):
  """VGGVox thin ResNet-34 for 257 frequency bins, from its layer list (BN: gamma, beta)."""
  conv = lambda kh, kw, cin, cout: kh * kw * cin * cout
  bn = lambda c: 2 * c
  n = conv(7, 7, 1, 64) + bn(64)                               # conv1_1 + bn
  cin = 64
  for (f1, f2, f3), blocks in zip(((48, 48, 96), (96, 96, 128), (128, 128, 256),
                                   (256, 256, 512)), (2, 3, 3, 3)):
    for b in range(blocks):
      n += conv(1, 1, cin, f1) + bn(f1) + conv(3, 3, f1, f2) + bn(f2) + conv(1, 1, f2, f3) + bn(f3)
      if b == 0:                                               # 1x1_proj + bn
        n += conv(1, 1, cin, f3) + bn(f3)
      cin = f3
  # 257 -> pool 128 -> 64 -> 32 -> 16 -> (3,1)/(2,1) pool -> 7 rows: x_fc is a 7x1 conv
  n += conv(7, 1, 512, 512) + 512
  feat = 512
  if aggregation == "gvlad":
    n += conv(7, 1, 512, clusters + ghosts) + clusters + ghosts  # cluster assignment
    n += (clusters + ghosts) * 512                                # centres
    feat = clusters * 512
  n += feat * 512 + 512                                        # fc6 embedding
  return n + 512 * num_classes                                 # bias-free classifier


@pytest.mark.parametrize("aggregation", ["avg", "gvlad"])
def test_full_width_shape_and_param_count(aggregation):
  make = lambda: nets.ThinResNet34(10, rngs=nnx.Rngs(0), n_freq=257, aggregation=aggregation)
  m = nnx.eval_shape(make)  # abstract: no init compiles
  assert m.rows == 7 == nets.tr34_freq_rows(257)
  count = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(nnx.state(m, nnx.Param)))
  assert count == _hand_count(10, aggregation)
  out = jax.eval_shape(lambda x: make()(x), jax.ShapeDtypeStruct((2, 257, 250, 1), jnp.float32))
  assert out.shape == (2, 10)
  emb = jax.eval_shape(lambda x: make().embed(x), jax.ShapeDtypeStruct((3, 257, 40, 1),
                                                                       jnp.float32))
  assert emb.shape == (3, 512)


def test_too_few_frequency_rows_named():
  assert nets.tr34_freq_rows(34) == 1 and nets.tr34_freq_rows(33) == 0
  with pytest.raises(ValueError, match="speech.tr34_n_mels"):
    nnx.eval_shape(lambda: nets.ThinResNet34(3, rngs=nnx.Rngs(0), n_freq=32))


def _learner(k, size=400):
  md = types.SimpleNamespace(get_output_size=lambda: k, size=lambda: size)
  return SpeechLearner(md, meta_learner.options())


def test_schedule_picks_tr34_at_the_right_call():
  small, ten, large = _learner(9), _learner(10), _learner(12)
  assert [small.model_at(c) for c in range(5)] == ["lr_liblinear"] * 2 + ["tr34"] * 3
  for lr in (ten, large):  # "otherwise" = K >= 10
    assert [lr.model_at(c) for c in range(5)] == ["lr", "lr", "lr_sag", "tr34", "tr34"]
  assert small.round_epochs(0) == 8 and ten.round_epochs(0) == 8 and large.round_epochs(0) == 14
  assert small.round_epochs(1) == 1 and large.round_epochs(5) == 1
  assert [small.crop_length(r) for r in range(4)] == [32, 64, 128, 128]
  with pytest.raises(ValueError, match="speech.schedule_small_k"):
    meta_learner.options({"speech": {"schedule_small_k": ["lr", "resnet"]}})


def test_tiny_speech_cycle_trains_and_ensembles_tr34(tmp_path):
  d = demo_data.make_tiny_autodl(str(tmp_path), "speech")  # K = 3: TR34 from call 2
  tr, te, sol = data.read_split(d, "train"), data.read_split(d, "test"), data.load_solution(d)
  opts = {"seed": 0, "warmup_in_init": False, "call_seconds": [300.0, 0.0, 300.0],
          "speech": {"tr34_n_mels": 40, "tr34_frames": [16], "tr34_width_multiplier": 0.0625,
                     "tr34_first_epochs": [2, 2]}}
  m = Model(tr.get_metadata(), opts)
  assert m.weights == {"thin_resnet34": "random init"}
  preds = []
  for _ in range(4):
    m.train(tr.get_dataset(), 1000.0)
    preds.append(m.test(te.get_dataset(), 1000.0))
  assert m.failure is None
  hist = [h["model"] for h in m.learner.history]
  assert hist[0].startswith("lr_liblinear") and hist[1].startswith("lr_liblinear")
  spe = -(-m.learner.history[2]["n_train"] // 32)  # steps per epoch
  # round 0: 2 epochs; round 1: 1 epoch (the call deadline is far)
  assert hist[2] == f"tr34@r0f16s{2 * spe}" and hist[3] == f"tr34@r1f16s{3 * spe}"
  names = [e[0] for e in m.learner.ensembler.entries]
  assert names == hist  # every TR34 round is one ensembler entry
  for p in preds:
    assert p.shape == sol.shape and np.isfinite(p).all()
  tr34_pred = m.learner.ensembler.entries[3][2]
  assert tr34_pred.shape == sol.shape and np.allclose(tr34_pred.sum(1), 1.0, atol=1e-5)
  assert ev.nauc(sol, preds[-1]) > 0.6
