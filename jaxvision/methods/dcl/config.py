"""The `config.dcl` block: every option of DCL and its baselines, with the official defaults
(spec ../shared/papers/dcl.md §2, §9)."""
import ml_collections

MODES = ("dcl", "ce", "no_intra", "no_inter")


def defaults() -> ml_collections.ConfigDict:
  """The `config.dcl` block (read strictly by jaxvision.methods.dcl.method)."""
  return ml_collections.ConfigDict({
      "mode": "dcl",               # dcl | ce (CE only, alpha = 1 throughout) | no_intra | no_inter
      "image_size": 299,           # view size (input of the encoders)
      "momentum": 0.999,           # key encoder EMA
      "temperature": 0.07,
      "queue_size": 32768,         # K (must divide by the global batch)
      "queue_slack": 128,          # extra rows absorbing the enqueue overrun (official)
      "hard_keys": 5,              # keys enqueued per class and data shard (official threshold)
      "proto_momentum": 0.9,
      "ce_weight": 0.5,            # after the warm-up: ce * CE + inter * L_inter
      "inter_weight": 0.5,         #   + intra * (L_intra_fake + intra_real * L_intra_real)
      "intra_weight": 0.05,
      "intra_real_weight": 0.01,
      "ce_only_epochs": 2,         # official warmup 3 with 1-based epochs: epochs 1-2 CE only
      "intra_exclude_masked_pairs": False,  # official: masked pairs contribute exp(0) = 1
      "mask_threshold": 0.01,      # fake locations: mask > threshold; real: mask == 0
      "views": {                   # data view generation (views.ViewConfig)
          "raw_flip_prob": 0.5, "rotate_limit": 30.0, "cutout_prob": 0.1, "crop_prob": 0.5,
          "flip_prob": 0.5, "gray_prob": 0.1, "noise_prob": 0.1, "color_prob": 0.7,
          "blur_prob": 0.05, "srm_prob": 0.5, "patch_grid": 3,
          "align_mask": True,      # False = official (mask not warped with the image)
      },
  })
