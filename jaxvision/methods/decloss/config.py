"""The `config.decloss` block: every DECLoss-harness option with its default (read strictly)."""
import ml_collections

VARIANTS = ("l1", "decloss", "gan")
EXTRACTORS = ("random", "vgg19")


def loss_defaults() -> ml_collections.ConfigDict:
  """`DECLossConfig` fields except `scale` (which is `decloss.scale`); [RECON] defaults."""
  return ml_collections.ConfigDict({
      "lambda_pix": 1.0, "lambda_hf": 1.0, "lambda_con": 0.1, "hf_mode": "degradation",
      "hf_space": "y", "weighting": "binary", "rho": 0.1, "beta": 4.0, "gaussian_size": 5,
      "gaussian_sigma": 1.5, "enhancement": "both", "features": "extractor", "patch_size": 8,
      "patch_stride": 4, "negatives": "spatial", "num_anchors": 256, "num_hard": 64,
      "tau": 0.1, "anchor_threshold": 0.5, "eps": 1e-8})


def defaults() -> ml_collections.ConfigDict:
  """compare: the variants run one after another from the same starting generator (the
  pretrain stage's output, or its init when pretrain_steps = 0), each with a fresh optimizer:
  'l1' (L1 only), 'decloss' (L1 + L_HF + λ·L_SCL), 'gan' (ESRGAN: 0.01·L1 + perceptual +
  0.005·RaGAN with the discriminator role). extractor: 'random' (fixed random conv net,
  stated in the summary) or 'vgg19' (torchvision VGG-19 weights from
  models.extractor.init.torch_checkpoint, also used for the perceptual role).
  finetune_lr_multiplier: scales the generator's lr in every fine-tune stage, all variants
  alike (1 = the pretrain lr, as in spec §4 P2). lpips_alexnet:
  torchvision AlexNet weights (alexnet-owt-7be5be79.pth) to add the calibrated LPIPS v0.1
  (`lpips`, also the speed-ratio target) to every evaluation; lpips_lin: its linear layers
  ("" = weights/v0.1/alex.pth of the installed `lpips` package). "" = the proxy only.
  niqe_model: a NIQE pristine model (BasicSR's niqe_pris_params.npz or the authors'
  modelparameters.mat) to add NIQE of the SR outputs (Y, border = scale) to every evaluation;
  "" = off. PI is not available (Ma et al.'s trained forests are not)."""
  return ml_collections.ConfigDict({
      "scale": 4,
      "compare": ("l1", "decloss", "gan"),
      "pretrain_steps": 0,
      "finetune_steps": 1000,
      "eval_every_steps": 0,
      "finetune_lr_multiplier": 1.0,
      "extractor": "random",
      "loss": loss_defaults(),
      "gan": {"w_pix": 0.01, "w_percep": 1.0, "w_gan": 0.005},
      "lpips_proxy_seed": 1234,
      "lpips_alexnet": "",
      "lpips_lin": "",
      "niqe_model": "",
      "crops": True,
  })
