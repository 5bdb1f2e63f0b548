"""The `config.intraq` block: every IntraQ option with its default (read strictly)."""
import ml_collections


def defaults() -> ml_collections.ConfigDict:
  """The `config.intraq` block (the teacher's pretraining optimizer is `config.optims.teacher`,
  fine-tuning's is `config.optims.student`)."""
  return ml_collections.ConfigDict({
      "compare": "intraq",
      "pretrain": {"steps": 0},
      "synthesis": {
          "num_batches": 20, "batch_size": 256, "iters": 1000, "lr": 0.5, "b1": 0.9,
          "b2": 0.999, "plateau_factor": 0.1, "plateau_patience": 50, "plateau_min_lr": 1e-4,
          "bns_weight": 1.0, "lor": True, "p_lor": 0.5, "lor_min_scale": 0.5,
          "label_loss": "soft", "eps_soft": 1.0, "p_soft": 0.5, "mdc": True,
          "lambda_l": 0.0, "lambda_u": 2.0, "feature_layer": "auto"},
      "quant": {"w_bits": 4, "a_bits": 4, "quantize_input": False, "act_range": "ema",
                "ema_quirk": False, "overrides": ()},
      "calib": {"source": "synthetic", "steps": 800, "batch_size": 16, "augment": True},
      "finetune": {"steps": 147 * 200, "iters_per_epoch": 200, "batch_size": 256,
                   "kd_alpha": 20.0, "kd_temperature": 20.0, "ce_weight": 1.0, "augment": True},
  })
