"""LaConv / LaConvNet: language-guided dynamic convolutions for REC, RES and VQA
(Luo et al., IJCV; arXiv:2110.08797). Spec: ../shared/papers/laconv.md.

Model `laconvnet_vl` = GloVe(300, frozen) + GRU(512) + 1 MCAN SA layer -> LaConvNet-S (10
LaConv blocks; kwargs.variant='B' for 19) conditioned on the words in every block, with the
head of laconv.task: rec (PAFPN + single-level SimOTA box head), res (ASPP mask head), vqa
(MCAN AttFlat head, ours). Recipe (§4): 416x416 letterbox, Adam lr 1e-4 (b2 0.98, no decay),
clip 0.15, 3 warm-up epochs then cosine (to 0; the official ends at 1e-6), 40 epochs, batch
32, EMA 0.9997 for evaluation, flips with 'left' <-> 'right'.
Deviations: Adam eps 1e-8 (official 1e-9); without --config.laconv.glove_path the word
embedding is random N(0, 1) (reported in summary.json).

Variants (``--config=configs/laconv.py:<variant>[,demo|smoke]``):
  refcoco (default), refcoco+, refcocog          REC, eval split dataset.eval_split
                                                 (val | testA | testB | test)
  refcoco_res, refcoco+_res, refcocog_res        RES (mIoU, prec@X, IE)
  vqa2                                           VQA v2 (overall and per-type accuracy);
      needs --config.evals.eval.evaluators.vqa.answers_file=<data_dir>/vqa/answers.json
  demo  (flag) offline procedural scenes (shapes of colour x shape x position on
        scikit-image photos; synthetic scenes on real backgrounds), a tiny LaConvNet at
        64x64, Adam 2e-3, no EMA, GIoU box loss (the IoU loss gives no gradient
        to predicted boxes that miss the target); REC head on the stride-8 PAFPN level (at
        64x64 the s32 level is 2x2 cells for ~17-px shapes and barely learns) with the
        YOLOX objectness prior bias (1e-2); 3000 steps for REC, 1500 for RES, 6000 for VQA
        (on 16000 training scenes; REC and RES use 4000). Every scene task shares the
        vocabulary of the first 4000 training scenes (dataset.vocab_scenes). The task
        follows the variant (refcoco -> REC, refcoco_res -> RES, vqa2 -> VQA).
        LaConvNet vs the static-conv + late-fusion baseline over 3 seeds:
          python -m jaxvision.main --config=configs/laconv.py:demo --workdir=/tmp/laconv_rec \\
              --seeds=3 --sweep='laconv.conv=laconv,static'
        VQA starts from the REC run of the same seed (grounding pre-training on the same
        training scenes, as the paper fine-tunes from VL pre-training; the VQA head starts
        fresh: models.model.init.skip). From scratch it learns only the answer prior (49 %):
          python -m jaxvision.main --config=configs/laconv.py:vqa2,demo \\
              --workdir=/tmp/laconv_vqa --seeds=3 \\
              --config.models.model.init.checkpoint='/tmp/laconv_rec/conv=laconv/seed{seed}'
  smoke (flag) tiny CI run on 8 devices.

  python -m jaxvision.main --config=configs/laconv.py:refcoco --workdir=/tmp/laconv_refcoco \\
      --config.dataset.data_dir=~/refcoco_data --config.laconv.glove_path=~/glove.840B.300d.txt

Expected (official MODEL_ZOO, with 0.2M-image VL pre-training; REC accuracy %, RefCOCO
val/testA/testB): LaConvNet-S 80.26/83.51/75.28, -B 84.30/87.27/79.73 (RES mIoU S 67.64/72.21/
67.29). From scratch on RefCOCO alone: not run.
"""

# The :smoke run (train, eval, checkpoint, exact resume) is tested by this file; the
# generic tests/configs smoke test does not run it a second time.
SMOKE_TESTED_BY = "tests/methods/laconv/test_laconv_method.py"
import ml_collections

from jaxvision import config_lib
from jaxvision.methods.laconv.config import defaults

REC = ("refcoco", "refcoco+", "refcocog")
VARIANTS = REC + tuple(f"{v}_res" for v in REC) + ("vqa2",)
TINY = {"variant": "tiny", "text_dim": 32, "embed_dim": 32, "lang_heads": 4, "lang_ffn": 64,
        "neck_depth": 1}
# The demo's REC head: stride 8 (8x8 cells at 64x64; ~2 cells per 17-px shape, like the s32
# head on RefCOCO objects at 416) and the YOLOX objectness prior (1e-2).
DEMO_REC = {"rec_level": 0, "obj_prior": 0.01}


def _evals(task, vqa_vocab=None, every_steps=0):
  if task == "rec":
    ev = {"rec": {"box_format": "xyxy"}}
  elif task == "res":
    ev = {"mean": {}}
  elif vqa_vocab is not None:
    ev = {"vqa": {"vocab": list(vqa_vocab)}}
  else:
    ev = {"vqa": {"type": "laconv_vqa", "answers_file": ""}}
  return ml_collections.ConfigDict({"eval": config_lib.eval_block(
      predict=task, evaluators=ev, every_steps=every_steps)})


def get_config(arg=None):
  variant, flags = config_lib.parse_arg(arg, VARIANTS, default="refcoco")
  task = "vqa" if variant == "vqa2" else "res" if variant.endswith("_res") else "rec"
  c = config_lib.base_config()
  c.method = "laconv"
  c.seed = 123456
  c.laconv = defaults()
  c.laconv.task = task
  c.models = ml_collections.ConfigDict({"model": config_lib.model_block(
      "laconvnet_vl", variant="S", text_dim=512, embed_dim=300, n_sa=1)})
  c.optims = ml_collections.ConfigDict({"model": config_lib.optim_block(
      name="adam", lr=1e-4, b1=0.9, b2=0.98, weight_decay=0.0, schedule="cosine",
      warmup_epochs=3.0)})
  if task == "vqa":
    c.dataset.name = "vqa_v2"
    c.dataset.train_split, c.dataset.eval_split = "train", "val"
  else:
    c.dataset.name = "refcoco"
    c.dataset.ref_name = variant.replace("_res", "")
    c.dataset.eval_split = "val"
  c.dataset.size = 416
  c.batch_size, c.eval_batch_size = 32, 64
  c.num_epochs = 40.0
  c.evals = _evals(task)
  c.checkpoint_every = 2000
  c.log_every = 50

  from jaxvision.methods.laconv.scenes import answer_vocab  # noqa: PLC0415
  scenes_vocab = answer_vocab() + ["<unk>"]
  demo = {
      "seed": 0, "dataset.name": "laconv_scenes", "dataset.size": 64,
      "dataset.num_train": 4000, "dataset.num_eval": 500, "dataset.data_seed": 0,
      "dataset.vocab_scenes": 4000,
      "dataset.num_workers": 2,
      "models.model.kwargs": dict(TINY, **(DEMO_REC if task == "rec" else {})),
      "batch_size": 32, "eval_batch_size": 250, "num_epochs": None,
      "steps": 1500 if task == "res" else 3000,
      "optims.model.lr": 2e-3, "optims.model.warmup_epochs": 0.5, "laconv.ema_decay": 0.0,
      "laconv.grad_clip": 1.0, "laconv.max_tokens": 10, "laconv.iou_type": "giou",
      "checkpoint_every": 10_000,
      "log_every": 100, "evals": _evals(task, scenes_vocab, every_steps=500)}
  if task == "vqa":  # a REC demo run's checkpoint initialises all but the head (see above)
    # VQA trains longer (at 3000 steps it still underfits: its train accuracy equals its eval
    # accuracy) on more scenes (each seen 12 times, not 48); the vocabulary stays the REC
    # run's (dataset.vocab_scenes: the words of the first 4000 training scenes).
    demo.update({"models.model.init.skip": ("visual/head",), "steps": 6000,
                 "dataset.num_train": 16_000})
  smoke = config_lib.smoke_overrides(role="", **{
      "dataset.name": "laconv_scenes", "dataset.size": 64, "dataset.num_train": 64,
      "dataset.num_eval": 32, "dataset.data_seed": 0, "models.model.kwargs": dict(TINY),
      "optims.model.lr": 1e-3, "optims.model.warmup_epochs": 0.0, "laconv.ema_decay": 0.9,
      "laconv.max_tokens": 10, "evals": _evals(task, scenes_vocab),
      # 4 steps, checkpoints at 2 and 4, one evaluation at the end (one eval program).
      "steps": 4, "checkpoint_every": 2})
  config_lib.apply_flags(c, flags, demo=demo, smoke=smoke)
  if "smoke" in flags:
    c.evals.eval.every_steps = 0
  return c
