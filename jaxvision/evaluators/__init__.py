"""jaxvision.evaluators: the metrics of the ten papers, one tested library.

Importing this package registers the evaluators in
`jaxvision.core.registry.EVALUATORS` ('classification', 'psnr_ssim',
'matting', 'forgery', 'attack_success', 'vqa', 'rec', 'autodl_alc', 'fid',
'miou', 'compression'). It stays light: numpy/scipy/jax only (matplotlib is
imported inside `plot_learning_curve`, torch only to read .pth weights).
Padded batches: every evaluator takes a 0/1 `mask: [B]`; in multi-host runs
each process passes its addressable rows and `result()` combines all hosts.
"""
from jaxvision.evaluators import (attack, autodl, classification, compression, forgery, gan,
                                  image_quality, inception, matting, ranking, rec,
                                  segmentation, vqa)
from jaxvision.evaluators.attack import (AttackEvaluator, check_linf_budget, linf_norm,
                                         success, success_rate)
from jaxvision.evaluators.autodl import (AlcEvaluator, alc, average_rank, column_aucs, nauc,
                                         onehot_accuracy, plot_learning_curve, time_transform)
from jaxvision.evaluators.base import (ConcatAccumulator, MeanAccumulator, allgather_concat,
                                       allgather_sum)
from jaxvision.evaluators.classification import ClassificationEvaluator, per_example
from jaxvision.evaluators.compression import (CompressionReport, flops_report, model_size_bits,
                                              reduction_report, sparsity_report)
from jaxvision.evaluators.forgery import ForgeryEvaluator, binary_report, video_scores
from jaxvision.evaluators.gan import (FidEvaluator, feature_statistics, fid_from_features,
                                      frechet_distance, kid_from_features, polynomial_mmd2)
from jaxvision.evaluators.image_quality import (PsnrSsimEvaluator, psnr, quantize_uint8,
                                                rgb_to_y, ssim)
from jaxvision.evaluators.inception import InceptionFeatureExtractor, load_inception_weights
from jaxvision.evaluators.matting import (MattingEvaluator, conn, gauss_gradient_filter, grad,
                                          matting_metrics, mse, sad)
from jaxvision.evaluators.ranking import accuracy_at, eer, roc_auc, roc_curve
from jaxvision.evaluators.rec import RecEvaluator, box_iou, rec_accuracy
from jaxvision.evaluators.segmentation import (MiouEvaluator, confusion_matrix, mask_iou, miou,
                                               per_class_iou)
from jaxvision.evaluators.vqa import VqaEvaluator, normalize_answer, vqa_accuracy
