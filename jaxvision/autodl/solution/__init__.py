"""A modular any-modality AutoDL solution after the winners (autodl.md §6-7).

Modules: meta_learner (offline defaults and ablation switches), data_ingestor
(progressive loading, caching, validation split), model_selector (domain
inference and schedules), learners (image, video, speech, text, tabular) with
nets (JAX), evaluator (validation NAUC, ensembling). `Model` is the entry.
"""
from jaxvision.autodl.solution.model import Model

__all__ = ["Model"]
