"""DCL: dual contrastive learning for general face forgery detection (Sun et al., AAAI 2022).

Pure pieces (spec ../shared/papers/dcl.md): `views` (two-view data generation, SRM,
RandomPatch), `queues` (class queues, prototypes, hard-key selection, momentum key encoder),
`objective` (DCLNet = backbone + 1x1 feature squeeze; CE warm-up then weighted objective),
`fakes` (procedural self-blended faces for the demo). The losses live in
`jaxvision.losses.contrastive`.
"""
from jaxvision.methods.dcl.objective import DCLNet, ObjectiveConfig, combine, loss_weights
from jaxvision.methods.dcl.queues import (QueueConfig, check_queue_config, enqueue, init_memory,
                                          momentum_update, select_hard, update_memory,
                                          update_prototype)
from jaxvision.methods.dcl import data, method  # noqa: F401  (register datasets, method)
from jaxvision.methods.dcl.views import (PERMUTATIONS, SRM_KERNELS, ViewConfig, make_views,
                                         random_patch, srm)

__all__ = [
    "DCLNet", "ObjectiveConfig", "combine", "loss_weights", "QueueConfig", "check_queue_config",
    "enqueue", "init_memory", "momentum_update", "select_hard", "update_memory",
    "update_prototype", "PERMUTATIONS", "SRM_KERNELS", "ViewConfig", "make_views",
    "random_patch", "srm",
]
