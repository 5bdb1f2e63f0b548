"""VQA accuracy, REC accuracy, confusion-matrix mIoU and mask IoU."""
import numpy as np
import pytest
from sklearn.metrics import confusion_matrix as sk_confusion

from jaxvision.evaluators import rec, segmentation, vqa


def test_normalization():
  assert vqa.normalize_answer("Two") == "2"
  assert vqa.normalize_answer("The dog.") == "dog"
  assert vqa.normalize_answer("  a red\tball ") == "red ball"
  assert vqa.normalize_answer("dont know") == "don't know"
  assert vqa.normalize_answer("yes!") == "yes"
  assert vqa.normalize_answer("1,000") == "1000"
  assert vqa.normalize_answer("3.5") == "3.5"


def test_vqa_leave_one_out_counts():
  others = ["no"] * 10
  for rev in vqa.REVISIONS:
    for k, expect in [(0, 0.0), (1, 0.3), (2, 0.6), (3, 0.9), (4, 1.0)]:
      gts = ["yes"] * k + others[k:]
      assert vqa.vqa_accuracy("Yes", gts, rev) == pytest.approx(expect)
    # normalisation of the prediction: "Two" matches "2"
    assert vqa.vqa_accuracy("Two", ["2"] * 3 + ["3"] * 7, rev) == pytest.approx(0.9)
    # identical answers: perfect score
    assert vqa.vqa_accuracy("cat", ["cat"] * 10, rev) == 1.0
  # all 10 agree: master normalises neither side, so "Yes" != "yes"; 2016 always
  # normalises the prediction.
  assert vqa.vqa_accuracy("Yes", ["yes"] * 10) == 0.0
  assert vqa.vqa_accuracy("Yes", ["yes"] * 10, "2016") == 1.0
  assert vqa.vqa_accuracy(" yes\n", ["yes"] * 10) == 1.0  # stripped in both revisions


def test_vqa_master_vs_2016_normalisation():
  # Answers differ -> master fully normalises the human answers too: "Two"/"the dog"
  # become "2"/"dog"; 2016 only strips punctuation from them, so they never match.
  gts = ["Two"] * 4 + ["three"] * 6
  assert vqa.vqa_accuracy("2", gts) == 1.0
  assert vqa.vqa_accuracy("2", gts, "2016") == 0.0
  gts = ["the dog"] * 3 + ["cat"] * 7
  assert vqa.vqa_accuracy("Dog.", gts) == pytest.approx(0.9)
  assert vqa.vqa_accuracy("Dog.", gts, "2016") == 0.0
  # master strips the human answers before comparing them: " cat" == "cat" agree
  assert vqa.vqa_accuracy("cat", [" cat"] * 5 + ["cat"] * 5) == 1.0
  # ... so with all (stripped) answers equal, the prediction is not normalised
  assert vqa.vqa_accuracy("Cat", [" cat"] * 5 + ["cat"] * 5) == 0.0
  # 2016: the answers differ unstripped, the prediction is normalised to "cat" and
  # matches the 5 plain "cat" answers (>= 3 others for every annotator) -> 1.0
  assert vqa.vqa_accuracy("Cat", [" cat"] * 5 + ["cat"] * 5, "2016") == 1.0
  ev = vqa.VqaEvaluator(revision="2016")
  ev.update(["Yes"], [["yes"] * 10])
  assert ev.result()["accuracy"] == 100.0
  with pytest.raises(ValueError, match="revision"):
    vqa.VqaEvaluator(revision="2017")


def test_vqa_evaluator_types_and_mask():
  ev = vqa.VqaEvaluator()
  ev.update(["yes", "2", "junk"], [["yes"] * 10, ["2"] * 1 + ["4"] * 9, ["x"] * 10],
            answer_types=["yes/no", "number", "other"], mask=[1, 1, 0])
  r = ev.result()
  assert r["accuracy"] == pytest.approx(65.0)
  assert r["accuracy/yes/no"] == pytest.approx(100.0)
  assert r["accuracy/number"] == pytest.approx(30.0)


def test_box_iou_and_rec_accuracy():
  a = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]], float)
  b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [0, 0, 10, 20], [20, 20, 30, 30]], float)
  iou = rec.box_iou(a, b, "xyxy")
  np.testing.assert_allclose(iou, [1.0, 50 / 150, 0.5, 0.0])
  # IoU = 0.5 exactly is a miss (strict >)
  assert rec.rec_accuracy(a, b, "xyxy") == 25.0
  xywh_a = np.c_[a[:, :2], a[:, 2:] - a[:, :2]]
  xywh_b = np.c_[b[:, :2], b[:, 2:] - b[:, :2]]
  np.testing.assert_allclose(rec.box_iou(xywh_a, xywh_b, "xywh"), iou)
  with pytest.raises(ValueError, match="box_format"):
    rec.box_iou(a, b, "cxcywh")
  ev = rec.RecEvaluator("xyxy")
  ev.update(np.r_[a, [[9, 9, 1, 1]]], np.r_[b, [[0, 0, 1, 1]]], mask=[1, 1, 1, 1, 0])
  assert ev.result()["accuracy"] == 25.0


def test_confusion_and_miou():
  gt = np.array([[0, 0, 1], [1, 2, 255]])
  pr = np.array([[0, 1, 1], [1, 2, 0]])
  c = segmentation.confusion_matrix(gt, pr, 3)
  np.testing.assert_array_equal(c, sk_confusion(gt[gt < 3], pr[gt < 3], labels=[0, 1, 2]))
  # IoU: class0 1/(2+1-1)=1/2, class1 2/(2+3-2)=2/3, class2 1/1 = 1
  np.testing.assert_allclose(segmentation.per_class_iou(c), [0.5, 2 / 3, 1.0])
  assert segmentation.miou(c) == pytest.approx(100 * (0.5 + 2 / 3 + 1) / 3)
  assert segmentation.miou(segmentation.confusion_matrix(gt, np.where(gt < 3, gt, 0), 3)) == 100.0
  # an absent class is NaN and skipped
  c4 = segmentation.confusion_matrix(gt, pr, 4)
  assert np.isnan(segmentation.per_class_iou(c4)[3])
  assert segmentation.miou(c4) == pytest.approx(segmentation.miou(c))
  ev = segmentation.MiouEvaluator(3)
  ev.update(np.stack([gt, gt]), np.stack([pr, 1 - pr * 0]), mask=[1, 0])
  assert ev.result()["miou"] == pytest.approx(segmentation.miou(c))


def test_mask_iou():
  p = np.zeros((2, 4, 4)); p[:, :2] = 1.0
  g = np.zeros((2, 4, 4)); g[0, :2] = 1.0; g[1, :1] = 1.0
  np.testing.assert_allclose(segmentation.mask_iou(p, g), [1.0, 0.5])
