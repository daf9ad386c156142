"""MLP encoder for the encoded EHR vector."""

from __future__ import annotations

from torch import nn


class EHREncoderNet(nn.Module):
    def __init__(self, in_dim: int, emb: int = 32, hidden: int = 64, dropout: float = 0.2):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(max(in_dim, 1), hidden), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, emb), nn.ReLU())

    def forward(self, x):
        return self.net(x)
