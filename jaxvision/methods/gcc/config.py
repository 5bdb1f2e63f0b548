"""The `config.gcc` block: every GCC option with its default (read strictly).

Official-code behaviours that look like bugs are the default where the spec says so
(§2.3/§9), each behind a named flag; code bugs that crash are fixed (see configs/gcc.py).
"""
import ml_collections

TASKS = ("paired", "sr", "unpaired", "noise")


def defaults() -> ml_collections.ConfigDict:
  """task: 'paired' (Pix2Pix: D sees concat(x, image); batches {image, target} in [-1, 1]) or
  'sr' (SRGAN: D sees the image only; batches {lr, hr} in [0, 1], mapped to [-1, 1] inside).
  loss_type: hinge | lsgan | vanilla. lambda_adv: weight of the G adversarial term (SRGAN
  1e-3). lambda_l1: pixel L1 weight (paired). sr_lambda_pixel / sr_lambda_perceptual: pixel
  MSE and perceptual MSE weights (sr; official 0 and 1); perceptual_weights: torchvision
  vgg19().state_dict() file for the VGG-19 `perceptual_layer` features ("" = a fixed random
  conv extractor, stated in summary.json). grid_examples: eval examples per PNG grid row
  block (0 = no grids); grids are written at the end of every stage. lambda_content / lambda_gram: KD weights; kd_metric: 'rmse'
  (Pix2Pix/SAGAN/SRGAN) or 'mse' (CycleGAN). selective_d: gated student D + arch step (off =
  ablation "full D"); online_kd: teacher pair trained alongside + distillation (off = no
  teacher). arch_lr / arch_betas: Adam of alpha; arch_lr_step_steps: multiply the alpha lr by
  0.1 every this many GCC steps (0 = constant). d_half: D loss * 1/2 (SAGAN: False).
  teacher_gap_ema: smooth gap_T with beta = 1 - progress (the code's intent; default off =
  the code's behaviour). sparsity_steps: stage A length (0 = skip stage A and prune the
  random prototype by L1 norms); sparsity_mode: 'scale' (BN gamma, lambda 1e-2) or 'weight'
  (conv weights, lambda 1e-3); sparsity_multipliers: {layer path: factor}. prune_mode:
  'scale' | 'norm'; target_macs / prune_tolerance: thop_conv MACs; macs_input_shape: (H, W, C)
  the budget is measured at. gcc_steps: stage B length. *_epochs (> 0) count the same in
  epochs of the training split instead (they win over the step counts).
  Task 'unpaired' (CycleGAN: batches {A, B} in [-1, 1], two directions, jaxvision.methods.gcc.
  unpaired): lambda_cycle (cycle L1 weight per direction, the code's lambda_A = lambda_B = 10),
  lambda_identity (identity L1 = lambda_identity * lambda_cycle * L1; 0.5), pool_size (history
  pool of fakes for each D, 50), cyclegan_dkd_grad (False = the code: the teacher-D feature
  KD terms see the student's fake detached, logged only; True = they train G), target_macs_b
  (budget of G_B; 0 = target_macs), fixed_widths ({role: cfg}: skip the search for that
  generator and use the cfg, the code's hard-coded CycleGAN cfgs).
  Task 'noise' (SAGAN: batches {image[, index]} of real images in [-1, 1]; G(z), z ~ N(0, I) of
  the generator's z_dim, drawn in the step, the same z for teacher and student; no
  reconstruction term). macs_exclude_spectral_norm: the pruning budget counts MACs without the
  spectral-norm convs (the official thop artifact the SAGAN budget 0.016 G is in; both counts
  are reported).
  """
  return ml_collections.ConfigDict({
      "task": "paired",
      "loss_type": "hinge",
      "lambda_adv": 1.0,
      "lambda_l1": 100.0,
      "sr_lambda_pixel": 0.0,
      "sr_lambda_perceptual": 1.0,
      "perceptual_weights": "",
      "perceptual_layer": "relu5_4",
      "grid_examples": 4,
      "lambda_content": 50.0,
      "lambda_gram": 1e4,
      "kd_metric": "rmse",
      "selective_d": True,
      "online_kd": True,
      "arch_lr": 1e-4,
      "arch_betas": (0.9, 0.999),
      "arch_lr_step_steps": 0,
      "d_half": True,
      "teacher_gap_ema": False,
      "sparsity_steps": 0,
      "sparsity_mode": "scale",
      "sparsity_lambda": 1e-2,
      "sparsity_multipliers": {},
      "prune_mode": "scale",
      "target_macs": 3.0e9,
      "prune_tolerance": 0.1e9,
      "macs_input_shape": (256, 256, 3),
      "gcc_steps": 1000,
      "sparsity_epochs": 0.0,
      "gcc_epochs": 0.0,
      "arch_lr_step_epochs": 0.0,
      "lambda_cycle": 10.0,
      "lambda_identity": 0.5,
      "pool_size": 50,
      "cyclegan_dkd_grad": False,
      "target_macs_b": 0.0,
      "fixed_widths": {},
      "macs_exclude_spectral_norm": False,
  })
