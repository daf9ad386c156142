"""Seeded training loop with early stopping on a held-out validation part of the training fold."""

from __future__ import annotations

import contextlib
import copy
import time

import numpy as np
import torch

from lungai.fusion.losses import ClassBalancedFocalLoss
from lungai.progress import TICK_INTERVAL


@contextlib.contextmanager
def deterministic(seed: int):
    """Seed torch/numpy and switch on deterministic algorithms for the block (restored after)."""
    previous = torch.are_deterministic_algorithms_enabled()
    torch.manual_seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous, warn_only=True)


def _batch(arrays: dict, idx) -> tuple:
    return tuple(arrays[k][idx] for k in ("ehr", "genes", "ct", "avail"))


def fit(model: torch.nn.Module, train: dict, y: np.ndarray, val=None, y_val=None, *, n_classes: int,
        epochs: int = 150, patience: int = 20, lr: float = 3e-3, weight_decay: float = 1e-3,
        batch_size: int = 32, gamma: float = 2.0, seed: int = 0, min_epochs: int = 20, stop_on: str = "loss",
        progress=None) -> dict:
    """Train ``model`` in place; keeps the weights of the epoch with the lowest validation loss
    among epochs >= ``min_epochs`` (small validation sets make early minima noise).  With
    ``stop_on="f1"`` the criterion is the validation macro-F1 (ties broken by the loss).

    ``train``/``val`` are dicts of tensors ``ehr``, ``genes``, ``ct``, ``avail``.  Returns a history.
    """
    counts = np.bincount(y, minlength=n_classes)
    loss_fn = ClassBalancedFocalLoss(counts, gamma=gamma)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    yt = torch.as_tensor(y, dtype=torch.long)
    gen = torch.Generator().manual_seed(seed)
    best, best_state, since, history = float("inf"), None, 0, {"train_loss": [], "val_loss": []}
    n = len(y)
    # epochs (and the batches of a long one) are posted by elapsed time - at most every ``progress.tick_interval``
    # seconds (lungai.progress.Counter's rule), the last epoch and an early stop always - not every 10th epoch: 6-10 s
    # between posts with 500 genes on a loaded machine (QA stagefollow69); posting reads the clock only, the training
    # is the same
    clock = time.monotonic
    interval = float(getattr(progress, "tick_interval", TICK_INTERVAL))
    shown = clock()

    def due(final: bool) -> bool:
        nonlocal shown
        if progress is None or not (final or clock() - shown >= interval):
            return False
        shown = clock()
        return True

    for epoch in range(epochs):
        model.train()
        order = torch.randperm(n, generator=gen)
        total = 0.0
        batches = -(-n // batch_size)
        for start in range(0, n, batch_size):
            if start and due(False):   # within a long epoch too (all 162 patients of a loaded machine: ~5 s each)
                progress.update(0, f"epoch {epoch + 1}/{epochs} batch {start // batch_size + 1}/{batches}")
            idx = order[start:start + batch_size]
            if len(idx) < 2 and n >= 2:          # instance norm / batch stats need > 1 sample
                continue
            opt.zero_grad()
            loss = loss_fn(model(*_batch(train, idx)), yt[idx])
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        history["train_loss"].append(total / n)
        last = epoch + 1 == epochs
        if val is None:
            if due(last):                                                  # also without a validation set
                progress.update(0, f"epoch {epoch + 1}/{epochs} loss {total / n:.3f}")
            continue
        model.eval()
        with torch.no_grad():
            vlogits = model(*_batch(val, slice(None)))
            vloss = float(loss_fn(vlogits, torch.as_tensor(y_val, dtype=torch.long)))
        history["val_loss"].append(vloss)
        if stop_on == "f1":
            from sklearn.metrics import f1_score

            f1 = f1_score(y_val, vlogits.argmax(1).numpy(), average="macro", zero_division=0)
            vloss = (1.0 - f1) + 1e-3 * vloss
        stop = False
        if epoch + 1 >= min(min_epochs, epochs):
            if vloss < best - 1e-5:
                best, best_state, since = vloss, copy.deepcopy(model.state_dict()), 0
            else:
                since += 1
                stop = since >= patience
        if due(last or stop):
            progress.update(0, f"epoch {epoch + 1}/{epochs} val loss {vloss:.3f}" + (" (early stop)" if stop else ""))
        if stop:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    history["epochs_run"] = len(history["train_loss"])
    warm = min(min_epochs, epochs) - 1
    vl = history["val_loss"]
    history["best_epoch"] = warm + int(np.argmin(vl[warm:])) + 1 if len(vl) > warm else len(history["train_loss"])
    model.eval()
    return history
