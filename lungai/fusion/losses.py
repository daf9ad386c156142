"""Class-balanced focal loss (Cui et al., CVPR 2019 weights; Lin et al. focal term via MONAI)."""

from __future__ import annotations

import numpy as np
import torch


def class_balanced_weights(counts, beta: float = 0.999) -> np.ndarray:
    """Weights (1 - beta) / (1 - beta^n_c), normalised to sum to the number of classes."""
    counts = np.maximum(np.asarray(counts, float), 1.0)
    w = (1.0 - beta) / (1.0 - np.power(beta, counts))
    return (w / w.sum() * len(counts)).astype(np.float32)


class ClassBalancedFocalLoss(torch.nn.Module):
    """Softmax focal loss with class-balanced per-class weights, on logits (B, C) and labels (B,)."""

    def __init__(self, counts, gamma: float = 2.0, beta: float = 0.999):
        super().__init__()
        from monai.losses import FocalLoss

        self.weights = class_balanced_weights(counts, beta)
        self.loss = FocalLoss(to_onehot_y=True, use_softmax=True, gamma=gamma,
                              weight=torch.as_tensor(self.weights))

    def forward(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.loss(logits, y.view(-1, 1))
