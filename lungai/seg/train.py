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


def draw_samples(crops: list, whole: list, batch_size: int, rng, tf, tf_aug, patch_zyx) -> list:
    """One batch of patches: crop cases through MONAI's sampler, whole CTs through ``context_patch``."""
    samples = []
    for _ in range(batch_size):
        if whole and (not crops or rng.random() < WHOLE_CT_FRACTION):
            samples.append(tf_aug(context_patch(whole[rng.integers(len(whole))], patch_zyx, rng)))
        else:
            with warnings.catch_warnings():   # tumour-free crops: MONAI warns that it samples background only
                warnings.filterwarnings("ignore", message="Num foregrounds 0")
                samples.append(tf(crops[rng.integers(len(crops))])[0])
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
                 progress=None) -> tuple:
    """Returns (best state_dict, record).  Re-running with the same ``ckpt_dir`` resumes."""
    bar = progress or NullProgress()
    crops = [d for d in train_data if "hard_idx" not in d]
    whole = [d for d in train_data if "hard_idx" in d]
    member_seed = seed * 100 + k
    torch.manual_seed(member_seed)
    net = build_network(cfg)
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=1e-5)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
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
        tf = training_transform(cfg.patch_zyx, epoch_seed)
        tf_aug = augment_transform(cfg.patch_zyx, epoch_seed)
        net.train()
        losses = []
        for _ in range(iters_per_epoch):
            samples = draw_samples(crops, whole, batch_size, rng, tf, tf_aug, cfg.patch_zyx)
            x, y = _batch(samples, "image"), _batch(samples, "label")
            opt.zero_grad()
            loss = loss_fn(net(x), y)
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
