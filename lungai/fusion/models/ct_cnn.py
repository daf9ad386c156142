"""Small 3D CNN (MONAI convolution blocks) on the 2-channel tumour-centred crop (CT, mask).

No normalisation layers: with batch norm, the small training batches made the network rely on
batch statistics (training accuracy 1.0 with batch statistics, 0.72 with the running ones on the
synthetic cohort); instance/group norm would remove the absolute tumour size from the mask channel.
"""

from __future__ import annotations

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

    def forward(self, x):
        return self.head(self.pool(self.features(x)))
