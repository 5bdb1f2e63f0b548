"""GCC: generator-discriminator cooperative compression of GANs (spec: gcc.md, issue 14).

Pure pieces:
  gan_losses   hinge / lsgan / vanilla GAN losses, the loss gap and the architecture loss
  gates        selective-activation gate filters (WEIGHTS / ALPHA), clipping, reports
  steps        jitted D weight step (alpha frozen) and arch step (alpha only)
  image_pool   CycleGAN history pool as a pure pytree
  pruning      importance scores, global-threshold binary search to a MACs budget
  torch_import official PyTorch generators (teacher and pruned student) -> jaxvision
  fid          loop evaluator `gan_fid`: FID + KID of generated vs real eval images (Inception;
               'pixels' stand-in for CPU demos; validity masks for unequal unpaired domains)
  data         Pix2Pix folders, horse2zebra (tfds), celeba_gan (tfds), synthetic / faces demos
  method       the GCC loop (tasks 'paired', 'sr', 'noise', 'unpaired'), PNG grids at stage ends
  unpaired     the CycleGAN task (two directions, pools, cycle / identity L1)
Models live in jaxvision/models/gan.py; distillation losses in jaxvision/losses/gan_distill.py.
"""
from jaxvision.methods.gcc import gan_losses, gates, image_pool, pruning, steps, torch_import
from jaxvision.methods.gcc.gan_losses import (arch_loss, d_loss, d_loss_fake, d_loss_real, g_loss,
                                              loss_gap)
from jaxvision.methods.gcc.gates import ALPHA, WEIGHTS, clip_alpha, clip_model_alpha, gate_report
from jaxvision.methods.gcc.image_pool import ImagePool, init_pool, pool_query
from jaxvision.methods.gcc.pruning import (PruneResult, count_macs, importance_groups,
                                           prune_generator, search_threshold)
from jaxvision.methods.gcc.steps import (d_input, init_opt, make_arch_step, make_d_weight_step,
                                         teacher_gap)
from jaxvision.methods.gcc.torch_import import load_generator

__all__ = [
    "ALPHA", "ImagePool", "PruneResult", "WEIGHTS", "arch_loss", "clip_alpha", "clip_model_alpha",
    "count_macs", "d_input", "d_loss", "d_loss_fake", "d_loss_real", "g_loss", "gan_losses",
    "gate_report", "gates", "image_pool", "importance_groups", "init_opt", "init_pool",
    "load_generator", "loss_gap", "make_arch_step", "make_d_weight_step", "pool_query",
    "prune_generator", "pruning", "search_threshold", "steps", "teacher_gap", "torch_import",
]

from jaxvision.methods.gcc.method import GCC  # noqa: E402  (registers "gcc" in METHODS)
from jaxvision.methods.gcc import unpaired  # noqa: F401,E402  (the CycleGAN task)
from jaxvision.methods.gcc import data  # noqa: F401,E402  (registers the GCC datasets)
from jaxvision.methods.gcc import fid  # noqa: F401,E402  (registers the `gan_fid` evaluator)

__all__ += ["GCC"]
