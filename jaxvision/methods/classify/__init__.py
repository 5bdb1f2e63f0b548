"""Dense classification (the reference method; its step builders are reused)."""
from jaxvision.methods.classify.method import (CLASSIFY, build_model, ce_loss, graphdef,
                                               init_state, load_pretrained, make_eval_step,
                                               make_train_step, make_tx, merge, model_state,
                                               split)
