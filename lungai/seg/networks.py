"""MONAI networks from a :class:`SegConfig`, and MC-dropout switching.

All four (U-Net, Attention U-Net, UNETR, DynUNet) take one input channel (windowed HU) on (z, y, x) patches and give 2 logits
(background, tumour).  Dropout is placed inside the networks so that it can be switched on
at inference for MC dropout (:func:`enable_dropout`) while normalisation stays in eval mode.
"""

from __future__ import annotations

import torch
from monai.networks.nets import UNETR, AttentionUnet, DynUNet, UNet

from lungai.seg.config import SegConfig


def build_network(cfg: SegConfig) -> torch.nn.Module:
    strides = (2,) * (len(cfg.channels) - 1)
    if cfg.arch == "unet":
        return UNet(spatial_dims=3, in_channels=1, out_channels=2, channels=cfg.channels, strides=strides,
                    num_res_units=1, dropout=cfg.dropout)
    if cfg.arch == "attention_unet":
        return AttentionUnet(spatial_dims=3, in_channels=1, out_channels=2, channels=cfg.channels,
                             strides=strides, dropout=cfg.dropout)
    if cfg.arch == "dynunet":      # nnU-Net's network (MONAI), optional deep supervision
        n = len(cfg.channels)
        return DynUNet(spatial_dims=3, in_channels=1, out_channels=2, kernel_size=[3] * n,
                       strides=[1] + [2] * (n - 1), upsample_kernel_size=[2] * (n - 1), filters=list(cfg.channels),
                       dropout=cfg.dropout, deep_supervision=cfg.deep_supervision,
                       deep_supr_num=max(1, min(2, n - 2)), res_block=True)
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


def alias_keys(model: torch.nn.Module) -> set:
    """State-dict keys that name a tensor already named by an earlier key (DynUNet registers its blocks
    twice); safetensors refuses shared tensors, so these are left out on saving and refilled on loading."""
    seen, out = set(), set()
    for name, t in model.state_dict().items():
        key = (t.data_ptr(), t.dtype, tuple(t.shape), tuple(t.stride()))
        if t.numel() and key in seen:
            out.add(name)
        seen.add(key)
    return out


def own_state(model: torch.nn.Module) -> dict:
    """``model.state_dict()`` without its alias keys (tensors still shared with the model)."""
    aliases = alias_keys(model)
    return {n: t for n, t in model.state_dict().items() if n not in aliases}


def load_own_state(model: torch.nn.Module, state: dict) -> None:
    """Load a state saved by :func:`own_state`: every key but the aliases must be there."""
    result = model.load_state_dict(state, strict=False)
    missing = set(result.missing_keys) - alias_keys(model)
    if missing or result.unexpected_keys:
        raise RuntimeError(f"weights do not fit the network: missing {sorted(missing)[:3]}, "
                           f"unexpected {sorted(result.unexpected_keys)[:3]}")
