"""jaxvision.losses: BN-statistics matching, IntraQ synthesis terms, distillation."""
from jaxvision.losses.bn_stats import (BNTap, Captured, FeatureTap, attach_taps, bn_stats,
                                       bn_stats_loss, captured_features, detach_taps)
from jaxvision.losses.distill import cross_entropy, kd_loss
from jaxvision.losses.intraq import (cosine_distance, init_class_centres, lookup_centres,
                                     marginal_distance_loss, sample_soft_targets,
                                     soft_inception_loss, update_class_centres)

__all__ = [
    "BNTap", "Captured", "FeatureTap", "attach_taps", "bn_stats", "bn_stats_loss",
    "captured_features", "cosine_distance", "cross_entropy", "detach_taps", "init_class_centres",
    "kd_loss", "lookup_centres", "marginal_distance_loss", "sample_soft_targets",
    "soft_inception_loss", "update_class_centres",
]
