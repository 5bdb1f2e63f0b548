"""IntraQ: zero-shot quantization with intra-class heterogeneity (registered as "intraq")."""
from jaxvision.methods.intraq import augment, synthesis
from jaxvision.methods.intraq.method import (INTRAQ, SYNTH_VARIANTS, compare_list, image_grid,
                                             kd_ce_loss, make_student, quant_rules, save_images,
                                             stages, synth_config)
from jaxvision.methods.intraq.synthesis import (SynthConfig, init_extras, make_synthesis_step,
                                                synthesis_loss, synthesize, teacher_forward)

__all__ = [
    "INTRAQ", "SYNTH_VARIANTS", "SynthConfig", "augment", "compare_list", "image_grid",
    "init_extras", "kd_ce_loss", "make_student", "make_synthesis_step", "quant_rules",
    "save_images", "stages", "synth_config", "synthesis", "synthesis_loss", "synthesize",
    "teacher_forward",
]
