"""MONAI networks from a :class:`SegConfig`, and MC-dropout switching.

All three take one input channel (windowed HU) on (z, y, x) patches and give 2 logits
(background, tumour).  Dropout is placed inside the networks so that it can be switched on
at inference for MC dropout (:func:`enable_dropout`) while normalisation stays in eval mode.
"""

from __future__ import annotations

import torch
from monai.networks.nets import UNETR, AttentionUnet, UNet

from lungai.seg.config import SegConfig


def build_network(cfg: SegConfig) -> torch.nn.Module:
    strides = (2,) * (len(cfg.channels) - 1)
    if cfg.arch == "unet":
        return UNet(spatial_dims=3, in_channels=1, out_channels=2, channels=cfg.channels, strides=strides,
                    num_res_units=1, dropout=cfg.dropout)
    if cfg.arch == "attention_unet":
        return AttentionUnet(spatial_dims=3, in_channels=1, out_channels=2, channels=cfg.channels,
                             strides=strides, dropout=cfg.dropout)
    extra = {"feature_size": 8, "hidden_size": 96, "mlp_dim": 192, "num_heads": 4, **cfg.extra}
    return UNETR(in_channels=1, out_channels=2, img_size=cfg.patch_zyx, dropout_rate=cfg.dropout,
                 spatial_dims=3, **extra)


def enable_dropout(model: torch.nn.Module) -> int:
    """Put the model in eval mode but its dropout layers in train mode; returns how many."""
    model.eval()
    n = 0
    for m in model.modules():
        if isinstance(m, (torch.nn.Dropout, torch.nn.Dropout2d, torch.nn.Dropout3d, torch.nn.AlphaDropout)):
            m.train()
            n += 1
    return n


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
