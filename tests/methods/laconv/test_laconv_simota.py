"""Box IoU/GIoU, SimOTA assignment and the REC loss on hand-made cases (laconv.md §3.3)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxvision.methods.laconv import boxes as B
from jaxvision.methods.laconv import simota
from jaxvision.models.laconvnet import grid_centers


def test_iou_and_giou_closed_forms():
  a = jnp.array([[0, 0, 2, 2], [0, 0, 1, 1], [0, 0, 2, 2], [0, 0, 1, 1]], jnp.float32)
  b = jnp.array([[1, 0, 3, 2], [2, 0, 3, 1], [0, 0, 2, 2], [0, 0, 0, 0]], jnp.float32)
  np.testing.assert_allclose(np.asarray(B.box_iou(a, b, "xyxy")), [1 / 3, 0, 1, 0], atol=1e-6)
  # Disjoint: C = 3x1, union 2 -> GIoU = 0 - 1/3; half overlap: C = union -> GIoU = IoU.
  np.testing.assert_allclose(np.asarray(B.box_giou(a[:3], b[:3], "xyxy")), [1 / 3, -1 / 3, 1],
                             atol=1e-6)
  c = B.xyxy_to_cxcywh(a)
  np.testing.assert_allclose(np.asarray(B.box_iou(c, B.xyxy_to_cxcywh(b))),
                             np.asarray(B.box_iou(a, b, "xyxy")), atol=1e-6)
  np.testing.assert_allclose(np.asarray(B.cxcywh_to_xyxy(c)), np.asarray(a))
  with pytest.raises(ValueError, match="format"):
    B.box_iou(a, b, "xywh")


def test_letterbox_round_trip_and_clip():
  lb = B.Letterbox.of(100, 200, 64)  # scale 0.32 -> 64 x 32, 16 px top padding
  assert (lb.new_w, lb.new_h, lb.left, lb.top) == (64, 32, 0, 16)
  box = np.array([[10.0, 20.0, 110.0, 70.0]])
  np.testing.assert_allclose(lb.to_canvas(box), [[3.2, 22.4, 35.2, 38.4]])
  np.testing.assert_allclose(lb.to_original(lb.to_canvas(box)), box)
  img = lb.apply_image(np.zeros((100, 200, 3), np.uint8), 64)
  assert img.shape == (64, 64, 3) and img[0, 0, 0] == 127 and img[20, 5, 0] == 0
  clipped, valid = B.clip_boxes_xyxy(np.array([[-5, -5, 10, 10], [70, 0, 80, 5]]), 50, 60)
  np.testing.assert_array_equal(clipped[0], [0, 0, 10, 10])
  np.testing.assert_array_equal(valid, [True, False])


def _toy():
  """4x4 grid, stride 32; GT centred at (64, 64), 40x40: in-box cells (1,1),(1,2),(2,1),(2,2)."""
  centers = jnp.asarray(grid_centers(4, 4, 32))
  gt = jnp.array([64.0, 64.0, 40.0, 40.0])
  # Predictions: GT centre, width scaled by s -> IoU = s exactly.
  s = np.full(16, 0.1, np.float32)
  in_box = [5, 6, 9, 10]
  s[in_box] = [0.9, 0.8, 0.3, 0.2]
  pred = jnp.stack([jnp.full(16, 64.0), jnp.full(16, 64.0), 40.0 * jnp.asarray(s),
                    jnp.full(16, 40.0)], -1)
  return centers, gt, pred, s, in_box


def test_simota_dynamic_k_and_cheapest_candidates():
  centers, gt, pred, s, in_box = _toy()
  fg, iou, k = simota.simota_assign(pred, centers, gt, 32.0)
  np.testing.assert_allclose(np.asarray(iou), s, rtol=1e-5)
  # top-10 IoUs: 0.9 + 0.8 + 0.3 + 0.2 + 6 x 0.1 = 2.8 -> k = 2: the two best in-box cells.
  assert int(k) == 2
  np.testing.assert_array_equal(np.nonzero(np.asarray(fg))[0], [5, 6])
  # A tiny GT (IoU sum < 1) still gets k = 1: the cheapest cell, the one in box and centre.
  fg2, _, k2 = simota.simota_assign(pred, centers, jnp.array([48.0, 48.0, 4.0, 4.0]), 32.0)
  assert int(k2) == 1 and np.asarray(fg2).sum() == 1 and bool(fg2[5])
  fg3, _, _ = simota.simota_assign(pred, centers, gt, 32.0, valid=False)
  assert not np.asarray(fg3).any()


def test_rec_loss_matches_hand_computation_and_decreases():
  centers, gt, pred, s, _ = _toy()
  obj = jnp.linspace(-2.0, 2.0, 16)
  boxes = jnp.stack([pred, pred])
  gts = jnp.stack([gt, gt])
  objs = jnp.stack([obj, obj])
  loss, aux = simota.rec_loss(boxes, objs, gts, centers, 32.0, valid=jnp.array([True, False]))
  fg = np.zeros(16, bool)
  fg[[5, 6]] = True
  o = np.asarray(obj, np.float64)
  bce = np.log1p(np.exp(-np.abs(o))) + np.maximum(o, 0) - o * fg
  want_iou = 5 * np.sum(1 - s[fg].astype(np.float64) ** 2) / 2
  want_obj = bce.sum() / 2  # the invalid sample adds nothing
  np.testing.assert_allclose(float(aux["loss_iou"]), want_iou, rtol=1e-5)
  np.testing.assert_allclose(float(aux["loss_obj"]), want_obj, rtol=1e-5)
  np.testing.assert_allclose(float(loss), want_iou + want_obj, rtol=1e-5)
  assert float(aux["num_fg"]) == 2

  @jax.jit
  def step(p):
    def lf(p):
      return simota.rec_loss(p[0], p[1], gts[:1], centers, 32.0, iou_type="giou")[0]

    l, g = jax.value_and_grad(lf)(p)
    return l, jax.tree.map(lambda a, b: a - 1.0 * b, p, g)

  p = (boxes[:1], objs[:1])
  l0, p = step(p)
  for _ in range(20):
    l, p = step(p)
  assert float(l) < 0.5 * float(l0)
  best = simota.rec_predict(*p)
  assert float(B.box_iou(best[0], gt)) > 0.5


def test_rec_predict_picks_highest_objectness():
  boxes = jnp.arange(24.0).reshape(2, 3, 4)
  obj = jnp.array([[0.0, 3.0, 1.0], [5.0, -1.0, 2.0]])
  np.testing.assert_array_equal(np.asarray(simota.rec_predict(boxes, obj)),
                                np.asarray(boxes[jnp.arange(2), jnp.array([1, 0])]))
  with pytest.raises(ValueError, match="iou_type"):
    simota.rec_loss(boxes, obj, boxes[:, 0], jnp.zeros((3, 2)), 32.0, iou_type="ciou")


def test_rec_head_level_stride_and_objectness_prior():
  """RecHead(stride 8, obj_prior 1e-2) on a zero map: obj = -log(99) and the boxes are the
  t = 0 decode (cell corner, 8 x 8); LaConvNet rejects an unknown rec_level / vqa_level."""
  from flax import nnx  # noqa: PLC0415

  from jaxvision.models import laconvnet as L  # noqa: PLC0415
  head = L.RecHead(4, 4, 8, rngs=nnx.Rngs(0), obj_prior=0.01)
  out = head(jnp.zeros((1, 2, 3, 4)), train=False)
  np.testing.assert_allclose(np.asarray(out["obj"]), -np.log(99.0), rtol=1e-6)
  corners = grid_centers(2, 3, 8) - 4.0
  np.testing.assert_allclose(np.asarray(out["boxes"][0]),
                             np.concatenate([corners, np.full((6, 2), 8.0)], -1), atol=1e-6)
  assert float(L.RecHead(4, 4, 32, rngs=nnx.Rngs(0)).obj.bias[0]) == 0.0  # official: no prior
  with pytest.raises(ValueError, match="rec_level"):
    L.LaConvNet(rngs=nnx.Rngs(0), variant="tiny", text_dim=32, rec_level=3)
  with pytest.raises(ValueError, match="vqa_level"):
    L.LaConvNet(rngs=nnx.Rngs(0), variant="tiny", text_dim=32, head="vqa", vqa_level=1)


def test_rec_loss_stride_follows_the_head_resolution():
  """The method's REC loss takes the stride from image / head map (8 for an 8x8 map at 64)."""
  import ml_collections  # noqa: PLC0415
  import types  # noqa: PLC0415

  from jaxvision.methods.laconv import method as M  # noqa: PLC0415
  from jaxvision.models.laconvnet import decode_rec  # noqa: PLC0415
  raw = jax.random.normal(jax.random.key(0), (2, 8, 8, 5))
  dec = decode_rec(raw, 8)
  gt = jnp.array([[20.0, 20.0, 16.0, 16.0], [44.0, 36.0, 12.0, 20.0]])
  batch = {"image": jnp.zeros((2, 64, 64, 3)), "tokens": jnp.ones((2, 4), jnp.int32),
           "box": gt, "valid": jnp.ones((2,))}
  cfg = ml_collections.ConfigDict({"laconv": {"task": "rec", "iou_type": "giou",
                                              "vqa_score": "mcan"}})
  loss_fn = M.make_loss(types.SimpleNamespace(config=cfg))
  loss, _ = loss_fn(lambda *a, **k: {"raw": raw, **dec}, batch, None)

  def want(stride):
    return simota.rec_loss(dec["boxes"], dec["obj"], gt, jnp.asarray(grid_centers(8, 8, stride)),
                           stride, iou_type="giou")[0]
  np.testing.assert_allclose(float(loss), float(want(8)), rtol=1e-6)
  assert abs(float(want(8)) - float(want(32))) > 1e-3
