"""jaxvision.losses: BN-statistics matching, IntraQ synthesis terms, distillation, contrastive (DCL)."""
from jaxvision.losses.bn_stats import (BNTap, Captured, FeatureTap, attach_taps, bn_stats,
                                       bn_stats_loss, captured_features, detach_taps)
from jaxvision.losses.contrastive import (inter_icl_loss, intra_icl_loss, l2_normalize,
                                          patch_sets)
from jaxvision.losses.distill import cross_entropy, kd_loss
from jaxvision.losses.intraq import (cosine_distance, init_class_centres, lookup_centres,
                                     marginal_distance_loss, sample_soft_targets,
                                     soft_inception_loss, update_class_centres)

__all__ = [
    "BNTap", "Captured", "FeatureTap", "attach_taps", "bn_stats", "bn_stats_loss",
    "captured_features", "cosine_distance", "cross_entropy", "detach_taps", "init_class_centres",
    "inter_icl_loss", "intra_icl_loss", "kd_loss", "l2_normalize", "lookup_centres", "marginal_distance_loss", "sample_soft_targets",
    "patch_sets", "soft_inception_loss", "update_class_centres",
]
