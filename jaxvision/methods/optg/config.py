"""The `config.optg` block: every option of OptG and its baselines, with defaults."""
import ml_collections


def defaults(target: float = 0.9) -> ml_collections.ConfigDict:
  """The `config.optg` block (read strictly by jaxvision.methods.optg)."""
  return ml_collections.ConfigDict({
      "method": "optg",          # optg | gmp | rigl | dense
      "target": target,          # final sparsity over the masked tensors
      "include": r"(^|/)kernel$",  # regex over param paths (ndim >= 2 only)
      "exclude": "",             # regex of paths kept dense
      "dense_first_last": False,  # ablation: first conv and classifier dense
      "distribution": "",        # '' = method default: optg global, gmp uniform, rigl erk
      "interval": 0,             # mask update every N steps; 0 = optg: 1 epoch, gmp/rigl: 100
      "beta": 1.0,               # OptG sigmoid slope (per epoch)
      "ties": "exact",           # 'exact' integer top-k, 'keep' = official code (ties kept)
      "snap_final": True,        # last refresh uses exactly `target`
      "score_momentum": 0.9,     # the supermask optimizer: SGD momentum, no weight decay
      "score_lr_mode": "ramp",   # 'ramp': lr_w * sigmoid ramp (code); 'constant': score_lr
      "score_lr": 0.1,
      "begin_frac": 0.0,         # gmp: cubic ramp start / end (fractions of the run)
      "end_frac": 0.75,          # gmp ramp end; rigl: last mask update
      "drop_fraction": 0.3,      # rigl
      "export": True,            # write workdir/export (masked params + meta)
  })
