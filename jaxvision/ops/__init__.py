"""jaxvision.ops: array operations shared by data pipelines, losses and methods."""
from jaxvision.ops.imresize import (bicubic_degrade, check_lr_hr, cubic, imresize, imresize_jax,
                                    modcrop, resize_weights)

__all__ = ["bicubic_degrade", "check_lr_hr", "cubic", "imresize", "imresize_jax", "modcrop",
           "resize_weights"]
