"""OptG: supermask-optimised gradient-driven sparse training (+ GMP, RigL, dense baselines)."""
from jaxvision.methods.optg.method import (OPTG, make_plan, make_score_tx, make_sparse_train_step,
                                           masked_params, score_lr_fn, sparse_report)

__all__ = ["OPTG", "make_plan", "make_score_tx", "make_sparse_train_step", "masked_params",
           "score_lr_fn", "sparse_report"]
