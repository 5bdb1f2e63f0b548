"""The `config.clr_rnf` block: every option of the method, with its default (read strictly).

Options: pr_target (FLOPs reduction target); lam (None = tuned); ranking 'clr' | 'l1' |
'lamzero' (λ=0 ablation) | 'uniform'; selection 'rnf' | 'l1' | 'random' (+ random_exclude_last,
the official quirk); rnf_fill 'official' | 'ascending' (which filters fill an overshooting
k-reciprocal intersection); flops_mode None | 'measured' | 'table'; inherit_bn; residual_select
'code' | 'aligned' (ResNet-50); seed; dense_epochs / dense_steps (the dense stage, trained with
`config.optims.dense`).
"""
import ml_collections


def defaults() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.pr_target = 0.5
  c.lam = ml_collections.FieldReference(None, field_type=float)
  c.ranking = "clr"
  c.selection = "rnf"
  c.rnf_fill = "official"  # overshoot fill: 'official' (CPython set.pop order) | 'ascending'
  c.random_exclude_last = False
  c.flops_mode = ml_collections.FieldReference(None, field_type=str)
  c.inherit_bn = False
  c.residual_select = "code"
  c.seed = 0
  c.dense_epochs = ml_collections.FieldReference(None, field_type=float)
  c.dense_steps = 0
  return c
