"""Training one member (Dice + CE, Adam, early stopping on validation Dice, resumable, seeded)
and a whole ensemble (members differ by their seed)."""

from __future__ import annotations

import time
import warnings

import numpy as np
import torch
from monai.losses import DiceCELoss

from lungai.overlap import dice
from lungai.progress import NullProgress
from lungai.seg import checkpoint
from lungai.seg.augment import augment_transform, context_patch, training_transform
from lungai.seg.config import SegConfig
from lungai.seg.predict import predict_probs
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
    r.setdefault("whole_fraction", WHOLE_CT_FRACTION)
    return r


def deep_supervision_loss(loss_fn):
    """MONAI's DeepSupervisionLoss (exponentially decreasing weights) around ``loss_fn``."""
    from monai.losses import DeepSupervisionLoss

    return DeepSupervisionLoss(loss_fn, weight_mode="exp")


def draw_samples(crops: list, whole: list, batch_size: int, rng, tf, tf_aug, patch_zyx,
                 fg_fraction: float | None = None, whole_fraction: float = WHOLE_CT_FRACTION) -> list:
    """One batch of patches: crop cases through MONAI's sampler, whole CTs through ``context_patch``."""
    samples = []
    positive = {} if fg_fraction is None else {"positive": float(fg_fraction)}
    implanted = [d for d in crops if d.get("implanted")]
    others = [d for d in crops if not d.get("implanted")] or implanted
    for _ in range(batch_size):
        if whole and (not crops or rng.random() < whole_fraction):
            samples.append(tf_aug(context_patch(whole[rng.integers(len(whole))], patch_zyx, rng, **positive)))
        else:
            pool = implanted if implanted and rng.random() < IMPLANT_SHARE else others
            with warnings.catch_warnings():   # tumour-free crops: MONAI warns that it samples background only
                warnings.filterwarnings("ignore", message="Num foregrounds 0")
                samples.append(tf(pool[rng.integers(len(pool))])[0])
    return samples


def validation_dice(net, val_data: list, cfg: SegConfig, device: str = "cpu") -> float:
    """Mean Dice over (at most 80, evenly spaced) validation cases on the model grid, for early stopping.

    Fast; the final validation metrics and the calibration use every validation case on its input grid.
    """
    step = max(1, int(np.ceil(len(val_data) / MAX_EARLY_STOP_CASES)))
    scores = [dice(predict_probs([net], d["image"][0], cfg, device=device)[0] > 0.5, d["label"][0])
              for d in val_data[::step]]
    return float(np.mean(scores)) if scores else 0.0


class _BatchStream(torch.utils.data.IterableDataset):
    """Worker ``w`` of ``workers`` draws every ``workers``-th batch of an epoch with its own seeded generators
    (DataLoader takes the workers' batches in turn, so the stream is fixed by the seed and the worker count)."""

    def __init__(self, crops, whole, cfg, recipe, epoch_seed, batch_size, iters, workers):
        self.args = (crops, whole, cfg, recipe, epoch_seed, batch_size)
        self.iters, self.workers = iters, workers

    def __iter__(self):
        crops, whole, cfg, recipe, epoch_seed, batch_size = self.args
        info = torch.utils.data.get_worker_info()
        w = info.id if info is not None else 0
        torch.set_num_threads(1)
        seed = epoch_seed * 64 + w + 1
        torch.manual_seed(seed)
        yield from _seeded_batches(crops, whole, cfg, recipe, seed, batch_size, len(range(w, self.iters, self.workers)))


def _seeded_batches(crops, whole, cfg, recipe, seed: int, batch_size: int, count: int):
    """``count`` (image, label) batches from generators seeded with ``seed``."""
    rng = np.random.default_rng(seed)
    tf = training_transform(cfg.patch_zyx, seed, recipe["augment"], recipe["fg_fraction"])
    tf_aug = augment_transform(cfg.patch_zyx, seed, recipe["augment"])
    for _ in range(count):
        samples = draw_samples(crops, whole, batch_size, rng, tf, tf_aug, cfg.patch_zyx, recipe["fg_fraction"],
                               recipe["whole_fraction"])
        yield _batch(samples, "image"), _batch(samples, "label")


def epoch_batches(crops, whole, cfg, recipe, epoch_seed: int, batch_size: int, iters: int, workers: int = 0):
    """The (image, label) batches of one epoch.  ``workers`` 0: drawn here (the reference stream); N > 0: drawn by
    N data-loading processes (a different, equally seeded stream: for an accelerator, where one process cannot
    augment patches as fast as the network trains)."""
    if workers <= 0:
        yield from _seeded_batches(crops, whole, cfg, recipe, epoch_seed, batch_size, iters)
        return
    n = min(workers, iters)
    stream = _BatchStream(crops, whole, cfg, recipe, epoch_seed, batch_size, iters, n)
    loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=n, prefetch_factor=4,
                                         persistent_workers=False)
    yield from loader


def device_name(device: str) -> str:
    """``device`` with the accelerator's name (recorded in the checkpoints and model.json)."""
    if str(device).startswith("cuda") and torch.cuda.is_available():
        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return str(device)


def _batch(samples, key):
    return torch.stack([torch.as_tensor(np.asarray(s[key])) for s in samples]).float()


def train_member(k: int, cfg: SegConfig, train_data: list, val_data: list, *, seed: int, epochs: int,
                 iters_per_epoch: int, batch_size: int, lr: float, patience: int, ckpt_dir,
                 progress=None, recipe: dict | None = None, device: str = "cpu", workers: int = 0,
                 data_source: dict | None = None) -> tuple:
    """Returns (best state_dict, record).  Re-running with the same ``ckpt_dir`` resumes.

    ``recipe``: ``lr_schedule`` (constant / poly), ``augment`` (basic / strong), ``fg_fraction`` (share of
    patches centred on the tumour; None = 2/3 for crops, 1/3 for whole CTs); deep supervision comes with
    ``cfg.deep_supervision``.  ``device`` (e.g. "cuda") trains there; ``workers`` > 0 draws the batches in that
    many processes (see :func:`epoch_batches`); the checkpoints and the returned weights are on the CPU.
    ``data_source`` (e.g. the arrays file and the cases it left out) is recorded with the device."""
    bar = progress or NullProgress()
    recipe = recipe_of(recipe)
    crops = [d for d in train_data if "hard_idx" not in d]
    whole = [d for d in train_data if "hard_idx" in d]
    member_seed = seed * 100 + k
    torch.manual_seed(member_seed)
    net = build_network(cfg).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=1e-5)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    ds_loss = deep_supervision_loss(loss_fn) if cfg.deep_supervision else None
    state = {"epoch": 0, "best_dice": -1.0, "best_epoch": -1, "history": [], "done": False}
    best = clone_state(net)
    restored = checkpoint.load(ckpt_dir, k, net, opt)
    if restored is not None:
        best, state = restored
        # said on its own line too (the bar's message is replaced by the next): where the resume picks up
        print(f"member {k}: resumed from its checkpoint after epoch {state['epoch']} of {epochs}"
              + (" (stopped early: nothing left to train)" if state["done"] else ""), flush=True)
        bar.update(state["epoch"] * iters_per_epoch, f"member {k}: resumed at epoch {state['epoch']}")
    while not state["done"] and state["epoch"] < epochs:
        epoch = state["epoch"]
        epoch_seed = member_seed * 1000 + epoch
        torch.manual_seed(epoch_seed)
        net.train()
        losses = []
        t0 = time.perf_counter()
        batches = epoch_batches(crops, whole, cfg, recipe, epoch_seed, batch_size, iters_per_epoch, workers)
        for it, (x, y) in enumerate(batches):
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
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
        t1 = time.perf_counter()
        vd = validation_dice(net, val_data, cfg, device)
        state["history"].append({"epoch": epoch, "loss": float(np.mean(losses)), "val_dice": vd,
                                 "train_s": round(t1 - t0, 1), "val_s": round(time.perf_counter() - t1, 1)})
        if vd > state["best_dice"]:
            state["best_dice"], state["best_epoch"], best = vd, epoch, clone_state(net)
        state["epoch"] = epoch + 1
        if device != "cpu" or workers or data_source:
            state["trained_on"] = {"device": device_name(device), "data_workers": workers, **(data_source or {})}
        # what this member ran with: a resume may change it only where that is exact (lungai.seg.settings)
        state.update(checkpoint.schedule_settings(epochs=epochs, iters_per_epoch=iters_per_epoch, patience=patience))
        if state["epoch"] - 1 - state["best_epoch"] >= patience:
            state["done"] = True          # early stop; reaching ``epochs`` is not final (resume may extend)
        checkpoint.save(ckpt_dir, k, net, best, opt, state)
        bar.update(0, f"member {k} epoch {epoch}: loss {np.mean(losses):.3f}, val Dice {vd:.3f}")
    record = {"member": k, "seed": member_seed, "best_val_dice_model_grid": round(state["best_dice"], 4),
              "best_epoch": state["best_epoch"], "epochs_run": state["epoch"],
              "early_stopped": bool(state["done"]), "history": state["history"],
              **({"trained_on": state["trained_on"]} if "trained_on" in state else {})}
    return best, record
