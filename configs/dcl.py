"""DCL: Dual Contrastive Learning for General Face Forgery Detection (Sun et al., AAAI 2022).

Query encoder tf_efficientnet_b4 (+ 1x1 feature squeeze -> 100-d embedding at 299x299), a
momentum key encoder (m 0.999), two class queues of hard keys (K 32768, 5 per class and
device), Inter-ICL + Intra-ICL (tau 0.07) after 2 CE-only epochs, then
0.5 CE + 0.5 L_inter + 0.05 (L_intra_fake + 0.01 L_intra_real). Adam lr 2e-4 (coupled L2
1e-5), batch 32, 30 epochs, lr x0.1 at epochs 10 and 20. Spec: ../shared/papers/dcl.md.

Variants (``--config=configs/dcl.py:<variant>[,demo|smoke]``):
  ffpp_c23 (default), ffpp_c40
      Train on FF++ (all four methods, official 720/140/140 split JSONs, masks), test on
      FF++ test (frame + video AUC/EER/ACC). Cross-dataset tests are extra evals you switch
      on by pointing them at prepared data: --config.evals.celeb_df.dataset=forgery_frames
      with its data_dir/list_file (see jaxvision/methods/dcl/data.py); likewise dfdc_p, dfd,
      wdf. Expected (paper, frame AUC): Celeb-DF 82.30, WDF 71.14, DFDC-P 76.71, DFD 91.66.
  gid_df, gid_f2f
      GID cross-manipulation: train on three FF++ methods, test on the held-out one
      (paper ACC/AUC: GID-DF 87.70/94.90, GID-F2F 68.40/82.93).
  demo  (flag) offline: procedural fakes of lfw_subset (train: sbi + swap blends of 70
        identities; test: the held-out `mouth` blend on 30 held-out identities; every blend
        source carries its own texture, every frame is a fresh jitter), a tiny
        EfficientNet-B0 (width 0.25, depth 0.25) at 72x72, the squeeze keeping 8 channels
        of the 3x3 map (72-d embedding; official 1 channel would give 9-d), 6 epochs
        (210 steps, 2 CE-only), queue 128 and key momentum 0.99 (scaled to 210 steps),
        loss weights 1 / 1 / 0.1 (the official ratios at the warm-up's CE scale).
        DCL ties CE here (README, DCL section). Seeds and baselines in one command:
          python -m jaxvision.main --config=configs/dcl.py:demo --workdir=/tmp/dcl_demo \\
              --seeds=3 --sweep='dcl.mode=dcl,ce' --sweep_reference=mode=ce
  smoke (flag) tiny CI run on 8 devices.

Baselines in the same method and pipeline: --config.dcl.mode=ce (EfficientNet-B4, CE only, alpha = 1),
no_intra, no_inter (ablations).

  python -m jaxvision.main --config=configs/dcl.py:ffpp_c23 --workdir=/tmp/dcl_ffpp \\
      --config.dataset.data_dir=~/ffpp --config.models.student.init.torch_checkpoint=b4_ns.pth
"""

# The :smoke run (train, eval, checkpoint, exact resume) is tested by this file; the
# generic tests/configs smoke test does not run it a second time.
SMOKE_TESTED_BY = "tests/methods/dcl/test_dcl_method.py"
import ml_collections

from jaxvision import config_lib
from jaxvision.methods.dcl.config import defaults

VARIANTS = ("ffpp_c23", "ffpp_c40", "gid_df", "gid_f2f")
CROSS_TESTS = ("celeb_df", "dfdc_p", "dfd", "wdf")


def _roles(c, backbone, **kw):
  kw.setdefault("embed_channels", 1)  # the feature squeeze's output channels (official 1)
  c.models = ml_collections.ConfigDict({
      "student": config_lib.model_block("dcl_net", backbone=backbone, **kw),
      "key_encoder": config_lib.model_block("dcl_net", trainable=False, backbone=backbone, **kw)})
  c.optims = ml_collections.ConfigDict({"student": config_lib.optim_block(
      name="adam", lr=2e-4, weight_decay=1e-5, schedule="multistep", milestones_epochs=(10, 20),
      gamma=0.1, warmup_epochs=0.0, b1=0.9, b2=0.999)})


def get_config(arg=None):
  variant, flags = config_lib.parse_arg(arg, VARIANTS, default="ffpp_c23")
  c = config_lib.base_config()
  c.method = "dcl"
  c.seed = 1234
  c.dcl = defaults()
  _roles(c, "tf_efficientnet_b4")
  c.dataset.name = "ffpp"
  c.dataset.size = 299
  c.dataset.compression = "c40" if variant == "ffpp_c40" else "c23"
  methods = ["Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures"]
  held = {"gid_df": "Deepfakes", "gid_f2f": "Face2Face"}.get(variant)
  if held:
    methods.remove(held)
  c.dataset.methods = tuple(methods)
  c.dataset.eval_methods = (held,) if held else tuple(methods)
  c.dataset.eval_split = "test"
  c.batch_size, c.eval_batch_size = 32, 64
  c.num_epochs = 30.0
  c.checkpoint_every = 2000
  c.evals = ml_collections.ConfigDict({
      "eval": config_lib.eval_block(predict="forgery", evaluators={"forgery": {
          "type": "dcl_forgery", "curve": "eval", "acc_rule": ">="}})})
  c.log_every = 50
  config_lib.apply_flags(c, flags, demo={
      "seed": 0,
      "dataset.name": "dcl_faces", "dataset.size": 64, "dataset.copies": 4,
      "dataset.train_variants": ("sbi", "swap"), "dataset.test_variants": ("mouth",),
      "dataset.num_workers": 2,
      "models.student.kwargs": {"backbone": "efficientnet_b0", "width_multiplier": 0.25,
                                "depth_multiplier": 0.25, "dropout": 0.2,
                                "embed_channels": 8},
      "models.key_encoder.kwargs": {"backbone": "efficientnet_b0", "width_multiplier": 0.25,
                                    "depth_multiplier": 0.25, "dropout": 0.2,
                                    "embed_channels": 8},
      # 72 px: the smallest view with a 3 x 3 final map; 8 squeeze channels -> 72-d embedding
      # (1 channel, the official squeeze, gives 9-d: DCL - CE was -9.9 +- 1.2 AUC, 72-d -4.5).
      # Queue and key momentum scaled to the 210 steps (official: K 32768 fills in ~10 % of
      # ~67k steps, m 0.999 averages ~1k steps). The former K 1024 / m 0.999 over 105 steps
      # left the queue ~60 % random init vectors and the key encoder ~90 % its random init.
      "dcl.image_size": 72, "dcl.queue_size": 128, "dcl.queue_slack": 8, "dcl.hard_keys": 4,
      "dcl.momentum": 0.99, "dcl.ce_only_epochs": 2,
      # Weights 1 / 1 / 0.1 instead of 0.5 / 0.5 / 0.05: the same ratios, but the CE term keeps
      # its warm-up scale at the switch. With 0.5 the switch halves the gradient and Adam's
      # second moment (b2 0.999) remembers the warm-up scale for ~1000 steps, so over the rest
      # of a 210-step run the CE fit ran at about half the step size (no_inter, i.e. 0.5 CE
      # alone, lost 3.5 AUC to CE).
      "dcl.ce_weight": 1.0, "dcl.inter_weight": 1.0, "dcl.intra_weight": 0.1,
      "batch_size": 32, "eval_batch_size": 120, "num_epochs": 6.0,
      "optims.student.lr": 1e-3, "optims.student.milestones_epochs": (4,),
      "checkpoint_every": 10_000, "log_every": 25, "compilation_cache": True,
  }, smoke=config_lib.smoke_overrides(**{
      "models.student.name": "dcl_net",
      "models.student.kwargs": {"backbone": "efficientnet_b0", "width_multiplier": 0.1,
                                "depth_multiplier": 0.25},
      "models.key_encoder.kwargs": {"backbone": "efficientnet_b0", "width_multiplier": 0.1,
                                    "depth_multiplier": 0.25},
      "dataset.name": "dcl_faces", "dataset.size": 32, "dataset.copies": 1,
      "dcl.image_size": 64, "dcl.queue_size": 64, "dcl.queue_slack": 8, "dcl.hard_keys": 1,
      "dcl.ce_only_epochs": 0, "batch_size": 16, "eval_batch_size": 32,
      # 4 steps, checkpoints at 2 and 4, one evaluation at the end (one eval program).
      "steps": 4, "checkpoint_every": 2, "evals.eval.every_steps": 0,
      "optims.student.lr": 1e-3, "optims.student.milestones_epochs": (),
  }))
  return c
