"""GCC's CycleGAN task (gcc.task='unpaired'; spec §2.4, official `models/CycleGAN.py`).

Batches {A, B} in [-1, 1], unpaired. Two directions, each a role set of method.ROLES /
method.ROLES_B: G_A = 'generator' (A -> B) with D_A = 'discriminator' (judges domain B), G_B =
'generator_b' (B -> A) with D_B = 'discriminator_b' (judges domain A); the teacher pair of each
direction is 'teacher_g' / 'teacher_d' and 'teacher_g_b' / 'teacher_d_b'.

Our reading of the official code for direction B in the student phase: it is a student too.
`MobileCycleGANModel.resnet_prune` prunes BOTH generators (cfg_AtoB, cfg_BtoA: the hard-coded
G_A and G_B cfgs of spec §2.2), both get gated BatchNorm PatchGANs, their own 1x1 adapters and
the same online distillation from their own teacher generator (teacher G_B's features and
teacher D_B's features), and the arch loss is computed per direction and summed. So every
step below runs on both directions; the reported numbers (horse -> zebra) are G_A's.

One CycleGAN update (`_cycle_update`, the code's `optimize_parameters` order): forward both
Gs, then ONE joint G step (both generators and, for the student, both adapter sets) on

    L_G = sum over directions of [lambda_adv * L_G^adv(D(G(x))) + lambda_cycle * |G'(G(x)) - x|_1
          + lambda_identity * lambda_cycle * |G(y) - y|_1] (+ KD)

(lsgan; the Ds frozen), then D_A and D_B steps on 1/2 (L_real + L_fake) with the fakes of
this step's forward (pre-update G) passed through a 50-image history pool per D.

Stages: sparsity (kind 'train'): the prototype Gs + the student Ds (alpha frozen at 1) as a plain
CycleGAN, the L1 sub-gradient on the conv weights of both Gs (weight mode). GCC stage, per step
on a batch of 2B (first half: the update batch, second half: the arch batch):
  1. teacher pair: a full CycleGAN update (own pools, InstanceNorm Ds). KD targets, as the code's
     hooks hold them: G_T features of this step's forward G_T(A) (pre-update) and D_T features of
     the D_T update's forward on the pooled fake (pre-update D_T).
  2. student Gs then student Ds (alpha frozen), as above, with KD per direction:
     lambda_c * MSE(phi(F_S), F_T) + lambda_g * MSE(Gram, Gram) over the 4 G features (1x1
     adapters phi) and the 2 features of the updated teacher D on the student's fake. The code
     feeds that D `fake.detach()`: the D terms add a constant (logged, no gradient) unless
     gcc.cyclegan_dkd_grad=True.
  3. arch step on the second half: per direction |gap(D_S, G_S(x')) - gap(D_T, G_T(x'))| +
     1/2 (L_real + L_fake) of D_S (no pool), Adam on alpha only; the two losses are summed
     (each alpha only sees its own direction's term).
Not implemented: the code's lambda_L1 * |G_S(x) - G_T(x)|_1 term (default 0, added 6x there).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from jaxvision.core import roles
from jaxvision.losses import gan_distill
from jaxvision.methods.gcc import gan_losses, image_pool, pruning
from jaxvision.methods.gcc import method as gm

DIR_A = {"g": "generator", "d": "discriminator", "tg": "teacher_g", "td": "teacher_d"}
DIR_B = {k: gm.ROLES_B[v] for k, v in DIR_A.items()}
POOLS = ("pool_a", "pool_b", "teacher_pool_a", "teacher_pool_b")


def _pool_shape(ctx):
  if ctx.data is not None and "A" in ctx.data.features:
    return tuple(ctx.data.features["A"][0])
  return tuple(ctx.config.gcc.macs_input_shape)


def init_extras(ctx, rng, meta, state, txs) -> dict:
  """Direction B's adapters / alpha Adam / gap EMA and the four history pools (empty)."""
  ad = gm._adapters(ctx, meta, nnx.Rngs(jax.random.fold_in(rng, 97)), DIR_B["g"], DIR_B["tg"])
  ad_params = nnx.state(ad, nnx.Param)
  d = roles.merge(roles.graphdef(ctx, meta, DIR_B["d"]), state["models"][DIR_B["d"]])
  pools = {k: image_pool.init_pool(int(ctx.config.gcc.pool_size), _pool_shape(ctx))
           for k in POOLS}  # one buffer each (donated separately)
  return {"adapters_b": ad_params, "adapters_b_opt": txs["generator"].init(ad_params),
          "alpha_opt_b": gm._alpha_tx(ctx).init(nnx.state(d, gm.gates.ALPHA)),
          "gap_ema_b": jnp.zeros((), jnp.float32),
          **{k: {"images": p.images, "count": p.count} for k, p in pools.items()}}


def direction_kd(g_feats, fake, targets, *, adapters, d_features, dkd_grad: bool,
                 lambda_content: float, lambda_gram: float, metric: str):
  """KD of one direction: sum over [adapters(G_S features)] + [teacher-D features of the
  student's fake] of lambda_c * rho(s, t) + lambda_g * rho(Gram(s), Gram(t)). The teacher D
  sees `fake` detached unless dkd_grad (the code detaches it: those terms then add a constant).
  adapters: list -> list; d_features: image -> list of D features. Returns (loss, parts)."""
  fk = fake if dkd_grad else jax.lax.stop_gradient(fake)
  s_feats = list(adapters(g_feats)) + list(d_features(fk))
  return gan_distill.feature_distill_loss(s_feats, targets, lambda_content=lambda_content,
                                          lambda_gram=lambda_gram, metric=metric)


def _query(E, key, images, rng):
  pool, out = image_pool.pool_query(image_pool.ImagePool(**E[key]), images, rng)
  E[key] = {"images": pool.images, "count": pool.count}
  return out


def train_step(ctx, meta, stage):
  c = ctx.config.gcc
  lt, half = c.loss_type, bool(c.d_half)
  n = max(int(c.gcc_steps), int(c.sparsity_steps), 1)
  rl = gm.task_roles(c)
  gd = {r: roles.graphdef(ctx, meta, r) for r in rl}
  txs = {r: roles.make_tx(ctx, r, n) for r in rl}
  ad_gdef = {k: nnx.split(nnx.eval_shape(
      lambda k=k, D=D: gm._adapters(ctx, meta, nnx.Rngs(0), D["g"], D["tg"])))[0]
      for k, D in (("A", DIR_A), ("B", DIR_B))}
  atx = gm._alpha_tx(ctx)
  sparse = stage.kind == "train"
  l1_targets = (pruning.l1_targets(gm._abstract(ctx, meta, "generator"), c.sparsity_mode,
                                   dict(c.sparsity_multipliers)) if sparse else None)
  teacher = gm._uses_teacher(c) and not sparse
  arch = bool(c.selective_d) and not sparse
  kd = bool(c.online_kd) and not sparse
  lam_adv, lam_c, lam_i = float(c.lambda_adv), float(c.lambda_cycle), float(c.lambda_identity)

  def run(role, M, x, **kw):  # model calls / D and arch updates: method's nested jits
    return gm._fwd(gd[role], M[role], x, **kw)[0]

  def d_step(role, ms, opt, real, fake):
    return gm._d_update(gd[role], txs[role], ms, opt, None, real, fake, lt, half,
                        freeze_alpha=not role.startswith("teacher"), features=True)

  def _cycle_update(M, O, E, ra, rb, pools, a, b, rng, *, kd_fn=None):
    """Joint G_A/G_B step then D_A/D_B steps (see module). ra / rb: role dicts of the two
    directions; pools: (pool of fakes A, pool of fakes B). Returns (metrics, taps): taps =
    G features on (a, b) and D features on the pooled fakes (pre-update), per direction."""
    ga, gb, da, db = ra["g"], rb["g"], ra["d"], rb["d"]

    def loss_fn(params):
      pa, pb, ads = params
      ra_, rb_ = M[ga]["rest"], M[gb]["rest"]

      def m_a(x, features=False):
        nonlocal ra_
        out, ra_ = gm._call(gd[ga], pa, ra_, x, features=features)
        return out

      def m_b(x, features=False):
        nonlocal rb_
        out, rb_ = gm._call(gd[gb], pb, rb_, x, features=features)
        return out

      fake_b, f_a = m_a(a, features=True)
      fake_a, f_b = m_b(b, features=True)
      rec_a, rec_b = m_b(fake_b), m_a(fake_a)
      adv_a = gan_losses.g_loss(run(da, M, fake_b), lt)
      adv_b = gan_losses.g_loss(run(db, M, fake_a), lt)
      cyc = gan_losses.cycle_loss(rec_a, a, lam_c) + gan_losses.cycle_loss(rec_b, b, lam_c)
      loss = lam_adv * (adv_a + adv_b) + cyc
      aux = {"g_adv_a": adv_a, "g_adv_b": adv_b, "g_cycle": cyc}
      if lam_i > 0:
        idt = (gan_losses.identity_loss(m_a(b), b, lam_c, lam_i)
               + gan_losses.identity_loss(m_b(a), a, lam_c, lam_i))
        loss = loss + idt
        aux["g_identity"] = idt
      if kd_fn is not None:
        kdl, parts = kd_fn(ads, (f_a, f_b), (fake_b, fake_a))
        loss = loss + kdl
        aux.update(parts)
      return loss, (aux, (ra_, rb_), (fake_a, fake_b), (f_a, f_b))

    ads = (E["adapters"], E["adapters_b"]) if kd_fn is not None else ()
    (lg, (aux, rests, (fake_a, fake_b), feats)), (g_a, g_b, g_ad) = jax.value_and_grad(
        loss_fn, has_aux=True)((M[ga]["params"], M[gb]["params"], ads))
    if l1_targets is not None:
      g_a = pruning.add_l1_subgradient(g_a, M[ga]["params"], l1_targets, c.sparsity_lambda)
      g_b = pruning.add_l1_subgradient(g_b, M[gb]["params"], l1_targets, c.sparsity_lambda)
    for role, g, rest in ((ga, g_a, rests[0]), (gb, g_b, rests[1])):
      p, O[role] = gm._apply(txs[role], M[role]["params"], g, O[role])
      M[role] = {"params": p, "rest": rest}
    if kd_fn is not None:
      for key, g in (("adapters", g_ad[0]), ("adapters_b", g_ad[1])):
        E[key], E[key + "_opt"] = gm._apply(txs["generator"], E[key], g, E[key + "_opt"])
    k_a, k_b = jax.random.split(rng)
    pooled_b = _query(E, pools[1], jax.lax.stop_gradient(fake_b), k_b)
    pooled_a = _query(E, pools[0], jax.lax.stop_gradient(fake_a), k_a)
    M[da], O[da], l_da, e_a = d_step(da, M[da], O[da], b, pooled_b)
    M[db], O[db], l_db, e_b = d_step(db, M[db], O[db], a, pooled_a)
    metrics = {"g_loss": lg, "d_loss": l_da + l_db, "d_loss_a": l_da, "d_loss_b": l_db, **aux}
    taps = [jax.lax.stop_gradient(list(f) + list(e)) for f, e in zip(feats, (e_a, e_b))]
    return metrics, taps

  def step(state, batch, rng):
    a, b = batch["A"], batch["B"]
    if not sparse:  # every GCC-stage row updates on the first half; the second is the arch batch
      h = a.shape[0] // 2
      a, b, aa, ba = a[:h], b[:h], a[h:], b[h:]
    M, O, E = dict(state["models"]), dict(state["opt"]), dict(state["extras"])
    k_t, k_s = jax.random.split(rng)
    metrics = {}
    if teacher:
      tm, targets = _cycle_update(M, O, E, {"g": "teacher_g", "d": "teacher_d"},
                                  {"g": "teacher_g_b", "d": "teacher_d_b"},
                                  ("teacher_pool_a", "teacher_pool_b"), a, b, k_t)
      metrics.update({f"teacher/{k}": v for k, v in tm.items()
                      if k in ("g_loss", "d_loss", "g_cycle")})

    def kd_fn(ads, feats, fakes):
      total, content, gram = jnp.float32(0), jnp.float32(0), jnp.float32(0)
      for k, D, ap, f, fake, tgt in zip(("A", "B"), (DIR_A, DIR_B), ads, feats, fakes, targets):
        loss, parts = direction_kd(
            f, fake, tgt, adapters=nnx.merge(ad_gdef[k], ap),
            d_features=lambda x, td=D["td"]: run(td, M, x, features=True)[1],
            dkd_grad=bool(c.cyclegan_dkd_grad), lambda_content=c.lambda_content,
            lambda_gram=c.lambda_gram, metric=c.kd_metric)
        total, content, gram = total + loss, content + parts["content"], gram + parts["gram"]
      return total, {"kd_content": content, "kd_gram": gram}

    sm, _ = _cycle_update(M, O, E, DIR_A, DIR_B, ("pool_a", "pool_b"), a, b, k_s,
                          kd_fn=kd_fn if kd else None)
    metrics.update(sm)
    if arch:
      la = jnp.float32(0)
      for D, x, y, ema, opt, sfx in ((DIR_A, aa, ba, "gap_ema", "alpha_opt", ""),
                                     (DIR_B, ba, aa, "gap_ema_b", "alpha_opt_b", "_b")):
        # direction A: G_A(x' in A) is judged against real B by D_A; direction B mirrors it
        fs = run(D["g"], M, x)
        ft = run(D["tg"], M, x)
        gap_t, E[ema] = gm._teacher_gap(c, gd[D["td"]], M[D["td"]], None, ft, lt, E[ema],
                                        state["step"], ctx.num_steps)
        M[D["d"]], E[opt], l, parts = gm._arch_update(gd[D["d"]], M[D["d"]], E[opt], atx, None,
                                                      y, fs, gap_t, lt, half)
        la = la + l
        metrics.update({f"gap_s{sfx}": parts["gap_s"], f"gap_t{sfx}": parts["gap_t"]})
      metrics["arch_loss"] = la
    metrics["loss"] = metrics["g_loss"]
    return {"step": state["step"] + 1, "models": M, "opt": O, "extras": E}, metrics

  return step


def predict_fns(ctx, meta, stage):
  """'translate': pred / teacher = student / teacher G_A(A), pred_b / teacher_b = G_B(B), input
  = A, real = B (the real images of G_A's output domain, FID's reference), all in [0, 1]; +
  target (a ground truth of G_A(A), synthetic demo data only) and fake_valid / real_valid
  (which rows hold a real A / B example when the two test domains differ in size)."""
  g = {r: roles.graphdef(ctx, meta, r) for r in gm._grid_roles(ctx.config.gcc)}

  def translate(state, batch):
    def fwd(r, x):
      return gm._to01(roles.merge(g[r], state["models"][r])(x, train=False))
    a, b = batch["A"], batch["B"]
    out = {"pred": fwd("generator", a), "teacher": fwd("teacher_g", a),
           "pred_b": fwd("generator_b", b), "teacher_b": fwd("teacher_g_b", b),
           "input": gm._to01(a), "real": gm._to01(b)}
    if "target" in batch:
      out["target"] = gm._to01(batch["target"])
    if "a_valid" in batch:
      out["fake_valid"], out["real_valid"] = batch["a_valid"], batch["b_valid"]
    return out

  return {"translate": translate}
