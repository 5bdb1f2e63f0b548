"""Every option of the LLTA runner (config.llta), with defaults (llta.md §2, §4, §9)."""
import ml_collections


def defaults() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict({
      # attacks run in this order; names from jaxvision.attacks.ATTACK_NAMES
      "attacks": ("mifgsm", "dim", "tim", "sgm", "llta", "llta_mi"),
      "eps": 16 / 255,            # L∞ budget in [0, 1] pixel units (16/255, not 16)
      "steps": 10,                # iterations of every attack (LLTA: outer iterations T)
      "overrides": {},            # {attack: {AttackConfig/LLTAConfig field: value}}
      "labels": "surrogate",      # attack labels: 'surrogate' predictions (official) or 'true'
      "criterion": "fooling",     # matrix: 'fooling' (official) or 'misclassification'
      "num_images": 1000,         # the first N eval images (fixed indices 0..N-1)
      "attack_batch": 50,         # images per attack call (padded to the data-axis size)
      "attack_pp": "to_float",    # eval pp giving [0, 1] pixels (no normalize: models do it)
      "norm": {"default": "imagenet"},  # role -> preset ('imagenet', 'digits', ...) or [mean, std]
      "allow_norm_mismatch": False,     # victims whose normalisation differs from the surrogate's
      "quantize_uint8": False,    # official PNG saving: floor(x_adv * 255) / 255
      "train_steps": 0,           # steps of each trainable role's stage (demo: trained first)
      "role_train_steps": {},     # {role: steps} overriding train_steps for that role's stage
  })
