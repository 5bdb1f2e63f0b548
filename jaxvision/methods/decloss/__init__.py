"""DECLoss (Xu et al. 2022): L1 / DECLoss / ESRGAN-GAN super-resolution in one harness.

The loss lives in `jaxvision.losses.decloss`, the SR zoo in `jaxvision.models.sr`, the MATLAB
bicubic in `jaxvision.ops`; this package registers the method "decloss".
"""
from jaxvision.methods.decloss import metrics
from jaxvision.methods.decloss.config import defaults
from jaxvision.methods.decloss.method import DECLOSS, compare_list, loss_config, speed_ratio

__all__ = ["DECLOSS", "compare_list", "defaults", "loss_config", "metrics", "speed_ratio"]
