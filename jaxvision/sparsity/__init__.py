"""jaxvision.sparsity: masks, scores, schedules, distributions, sparse baselines.

Masks live in the training state (`state["extras"]["masks"]`, nested dicts
mirroring the param tree, so they are checkpointed and sharded with it) and
are applied functionally to the NNX param state before `nnx.merge`.
"""
from jaxvision.sparsity.algorithms import METHODS, Plan, init_extras, make_plan, refresh, rigl_update
from jaxvision.sparsity.distributions import erk_counts, layer_counts, uniform_counts
from jaxvision.sparsity.masking import (apply_masks, init_masks, init_scores, layer_sparsity,
                                        map_masked, masked_weight, sparsity, weight_sparsity)
from jaxvision.sparsity.paths import DEFAULT_INCLUDE, first_last_layers, path_str, select
from jaxvision.sparsity.schedules import Schedule, cubic_sparsity, sigmoid_ramp, sigmoid_sparsity
from jaxvision.sparsity.topk import global_topk_masks, keep_count, topk_mask

__all__ = [
    "METHODS", "Plan", "init_extras", "make_plan", "refresh", "rigl_update", "erk_counts",
    "layer_counts", "uniform_counts", "apply_masks", "init_masks", "init_scores",
    "layer_sparsity", "map_masked", "masked_weight", "sparsity", "weight_sparsity",
    "DEFAULT_INCLUDE", "first_last_layers", "path_str", "select", "Schedule", "cubic_sparsity",
    "sigmoid_ramp", "sigmoid_sparsity", "global_topk_masks", "keep_count", "topk_mask",
]
