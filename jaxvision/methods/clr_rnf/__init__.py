"""CLR-RNF: cross-layer ranking & k-reciprocal nearest filter pruning (spec: clr_rnf.md).

Pure pieces (usable on any supported jaxvision model):
  ranking.cross_layer_ranking   computation-aware scores -> per-unit keep counts
  rnf.rnf_select                k-reciprocal nearest filter selection (closed-form k, official fill)
  prune.prune / plan_pruning    one-shot pruning of a model (rank, select, surgery)
  surgery.narrow_model          copy kept filters into the narrow model
The Method (`CLR_RNF`, registry name "clr_rnf") runs dense -> prune -> fine-tune.
"""
from jaxvision.core.registry import METHODS
from jaxvision.methods.clr_rnf import archs, ranking, rnf, surgery
from jaxvision.methods.clr_rnf.method import CLR_RNF, plot_widths, prune_options, prune_state
from jaxvision.methods.clr_rnf.pruning import (PruneOptions, PruneResult, plan_pruning, prune,
                                             random_model)
from jaxvision.methods.clr_rnf.rnf import l1_select, random_select, rnf_select, rnf_select_loop

METHODS.register("clr_rnf", CLR_RNF)

__all__ = ["CLR_RNF", "PruneOptions", "PruneResult", "archs", "l1_select", "plan_pruning",
           "plot_widths", "prune", "prune_options", "prune_state", "random_model",
           "random_select", "ranking", "rnf", "rnf_select", "rnf_select_loop", "surgery"]
