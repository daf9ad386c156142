"""Small 3D CNN (MONAI convolution blocks) on the 2-channel tumour-centred crop (CT, mask).

No normalisation layers: with batch norm, the small training batches made the network rely on
batch statistics (training accuracy 1.0 with batch statistics, 0.72 with the running ones on the
synthetic cohort); instance/group norm would remove the absolute tumour size from the mask channel.
"""

from __future__ import annotations

import numpy as np
from monai.networks.blocks import Convolution
from torch import nn


class CTEncoder(nn.Module):
    def __init__(self, emb: int = 32, channels=(4, 8, 16), strides=(2, 1, 2), dropout: float = 0.2):
        super().__init__()
        layers, c_in = [], 2
        for i, c in enumerate(channels):  # 24^3 -> 12^3 -> 12^3 -> 6^3
            layers.append(Convolution(3, c_in, c, strides=strides[i], kernel_size=3,
                                      act="RELU", norm=None))
            c_in = c
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(c_in, emb), nn.ReLU())

    @property
    def last_conv(self) -> nn.Module:
        """The layer Grad-CAM looks at (the deepest convolution block)."""
        return self.features[-1]

    def feature_grid(self) -> tuple:
        """(stride, offset) of the deepest feature map on the input crop, per axis (k, j, i), from the convolutions
        themselves: feature voxel ``n`` is centred on input voxel ``offset + stride * n``.  One convolution (stride
        s, kernel k, padding p, dilation d) centres its output voxel n on input voxel ``s * n - p + d * (k - 1) / 2``;
        chained, the strides multiply and the offsets add up.  Here (strides 2, 1, 2, kernel 3, padding 1): stride 4,
        offset 0 - feature voxel n on crop voxel 4n (not 4n + 1.5, where an align_corners=False upsampling puts it)."""
        stride, offset = np.ones(3), np.zeros(3)
        for m in self.features.modules():
            if isinstance(m, nn.Conv3d):
                if not isinstance(m.padding, (tuple, list)):
                    raise ValueError(f"padding {m.padding!r} of {m} has no fixed size")
                s, k, p, d = (np.array(v, float) for v in (m.stride, m.kernel_size, m.padding, m.dilation))
                offset = offset + stride * (-p + d * (k - 1) / 2.0)
                stride = stride * s
            elif isinstance(m, (nn.MaxPool3d, nn.AvgPool3d)):
                raise ValueError(f"feature_grid does not handle {m}")
        return stride, offset

    def forward(self, x):
        return self.head(self.pool(self.features(x)))
