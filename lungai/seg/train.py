"""Training one member (Dice + CE, Adam, early stopping on validation Dice, resumable, seeded)
and a whole ensemble (members differ by their seed)."""

from __future__ import annotations

import warnings

import numpy as np
import torch
from monai.losses import DiceCELoss

from lungai.overlap import dice
from lungai.progress import NullProgress
from lungai.seg import checkpoint
from lungai.seg.augment import augment_transform, context_patch, training_transform
from lungai.seg.config import SegConfig
from lungai.seg.infer import predict_probs
from lungai.seg.model_io import clone_state
from lungai.seg.networks import build_network


MAX_EARLY_STOP_CASES = 80
# Share of each batch drawn from whole CTs (when the training set has any): enough hard negatives
# (vessels, hilum, chest wall) to stop automatic mode marking them, while the many small crops
# (the real nodules) still make up most of every batch.
WHOLE_CT_FRACTION = 0.3
# Share of the crop draws given to tumours implanted into real CTs (when there are any): they are the only
# large tumours against a real mediastinum / chest wall, and would otherwise be ~1 draw in 8 next to the
# hundreds of small nodule crops.
IMPLANT_SHARE = 0.35


LR_SCHEDULES = ("constant", "poly")
POLY_POWER = 0.9     # nnU-Net's poly decay: lr = lr0 * (1 - step / steps) ** 0.9


def lr_at(base: float, schedule: str, step: int, total: int) -> float:
    """Learning rate of optimiser step ``step`` of ``total`` (a function of the step alone: resumes exactly)."""
    if schedule == "poly":
        return base * (1.0 - min(step, total - 1) / max(total, 1)) ** POLY_POWER
    return base


def recipe_of(recipe: dict | None) -> dict:
    """The training recipe with its defaults (the shipped model's recipe)."""
    r = {"lr_schedule": "constant", "augment": "basic", "fg_fraction": None, **(recipe or {})}
    return r


def deep_supervision_loss(loss_fn):
    """MONAI's DeepSupervisionLoss (exponentially decreasing weights) around ``loss_fn``."""
    from monai.losses import DeepSupervisionLoss

    return DeepSupervisionLoss(loss_fn, weight_mode="exp")


def draw_samples(crops: list, whole: list, batch_size: int, rng, tf, tf_aug, patch_zyx,
                 fg_fraction: float | None = None) -> list:
    """One batch of patches: crop cases through MONAI's sampler, whole CTs through ``context_patch``."""
    samples = []
    positive = {} if fg_fraction is None else {"positive": float(fg_fraction)}
    implanted = [d for d in crops if d.get("implanted")]
    others = [d for d in crops if not d.get("implanted")] or implanted
    for _ in range(batch_size):
        if whole and (not crops or rng.random() < WHOLE_CT_FRACTION):
            samples.append(tf_aug(context_patch(whole[rng.integers(len(whole))], patch_zyx, rng, **positive)))
        else:
            pool = implanted if implanted and rng.random() < IMPLANT_SHARE else others
            with warnings.catch_warnings():   # tumour-free crops: MONAI warns that it samples background only
                warnings.filterwarnings("ignore", message="Num foregrounds 0")
                samples.append(tf(pool[rng.integers(len(pool))])[0])
    return samples


def validation_dice(net, val_data: list, cfg: SegConfig) -> float:
    """Mean Dice over (at most 80, evenly spaced) validation cases on the model grid, for early stopping.

    Fast; the final validation metrics and the calibration use every validation case on its input grid.
    """
    step = max(1, int(np.ceil(len(val_data) / MAX_EARLY_STOP_CASES)))
    scores = [dice(predict_probs([net], d["image"][0], cfg)[0] > 0.5, d["label"][0]) for d in val_data[::step]]
    return float(np.mean(scores)) if scores else 0.0


def _batch(samples, key):
    return torch.stack([torch.as_tensor(np.asarray(s[key])) for s in samples]).float()


def train_member(k: int, cfg: SegConfig, train_data: list, val_data: list, *, seed: int, epochs: int,
                 iters_per_epoch: int, batch_size: int, lr: float, patience: int, ckpt_dir,
                 progress=None, recipe: dict | None = None) -> tuple:
    """Returns (best state_dict, record).  Re-running with the same ``ckpt_dir`` resumes.

    ``recipe``: ``lr_schedule`` (constant / poly), ``augment`` (basic / strong), ``fg_fraction`` (share of
    patches centred on the tumour; None = 2/3 for crops, 1/3 for whole CTs); deep supervision comes with
    ``cfg.deep_supervision``."""
    bar = progress or NullProgress()
    recipe = recipe_of(recipe)
    crops = [d for d in train_data if "hard_idx" not in d]
    whole = [d for d in train_data if "hard_idx" in d]
    member_seed = seed * 100 + k
    torch.manual_seed(member_seed)
    net = build_network(cfg)
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=1e-5)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    ds_loss = deep_supervision_loss(loss_fn) if cfg.deep_supervision else None
    state = {"epoch": 0, "best_dice": -1.0, "best_epoch": -1, "history": [], "done": False}
    best = clone_state(net)
    restored = checkpoint.load(ckpt_dir, k, net, opt)
    if restored is not None:
        best, state = restored
        bar.update(state["epoch"] * iters_per_epoch, f"member {k}: resumed at epoch {state['epoch']}")
    while not state["done"] and state["epoch"] < epochs:
        epoch = state["epoch"]
        epoch_seed = member_seed * 1000 + epoch
        torch.manual_seed(epoch_seed)
        rng = np.random.default_rng(epoch_seed)
        tf = training_transform(cfg.patch_zyx, epoch_seed, recipe["augment"], recipe["fg_fraction"])
        tf_aug = augment_transform(cfg.patch_zyx, epoch_seed, recipe["augment"])
        net.train()
        losses = []
        for it in range(iters_per_epoch):
            samples = draw_samples(crops, whole, batch_size, rng, tf, tf_aug, cfg.patch_zyx, recipe["fg_fraction"])
            x, y = _batch(samples, "image"), _batch(samples, "label")
            for g in opt.param_groups:
                g["lr"] = lr_at(lr, recipe["lr_schedule"], epoch * iters_per_epoch + it, epochs * iters_per_epoch)
            opt.zero_grad()
            out = net(x)
            loss = ds_loss(list(torch.unbind(out, 1)), y) if ds_loss is not None and out.dim() == 6 else loss_fn(out, y)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            bar.update(1)
        net.eval()
        vd = validation_dice(net, val_data, cfg)
        state["history"].append({"epoch": epoch, "loss": float(np.mean(losses)), "val_dice": vd})
        if vd > state["best_dice"]:
            state["best_dice"], state["best_epoch"], best = vd, epoch, clone_state(net)
        state["epoch"] = epoch + 1
        if state["epoch"] - 1 - state["best_epoch"] >= patience:
            state["done"] = True          # early stop; reaching ``epochs`` is not final (resume may extend)
        checkpoint.save(ckpt_dir, k, net, best, opt, state)
        bar.update(0, f"member {k} epoch {epoch}: loss {np.mean(losses):.3f}, val Dice {vd:.3f}")
    record = {"member": k, "seed": member_seed, "best_val_dice_model_grid": round(state["best_dice"], 4),
              "best_epoch": state["best_epoch"], "epochs_run": state["epoch"],
              "early_stopped": bool(state["done"]), "history": state["history"]}
    return best, record
