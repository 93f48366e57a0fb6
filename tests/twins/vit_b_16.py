"""ViT-B/16 (Dosovitskiy et al., 2020) for 224x224 RGB images, torchvision's vit_b_16 layout:
a 16x16 patch convolution, a learned class token (at the root) and a learned position embedding
(in the encoder), 12 pre-norm encoder layers, a final LayerNorm and a head on the class token.

The encoder layers are nn.TransformerEncoderLayer (pre-norm, GELU, eps 1e-6), which holds the same
parameters as torchvision's EncoderBlock in another order: the order the spec's layers register.
"""

from __future__ import annotations

import torch
from torch import nn

REFERENCE = 86_567_656  # torchvision.models.vit_b_16


class Encoder(nn.Module):
    def __init__(self, length: int, dim: int, heads: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.pos_embedding = nn.Parameter(torch.empty(1, length, dim).normal_(std=0.02))
        self.dropout = nn.Dropout(0.0)
        self.layers = nn.Sequential(
            *(
                nn.TransformerEncoderLayer(
                    dim,
                    heads,
                    hidden,
                    dropout=0.0,
                    activation="gelu",
                    layer_norm_eps=1e-6,
                    batch_first=True,
                    norm_first=True,
                )
                for _ in range(layers)
            )
        )
        self.ln = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ln(self.layers(self.dropout(x + self.pos_embedding)))


class VisionTransformer(nn.Module):
    def __init__(self, image: int = 224, patch: int = 16, dim: int = 768, classes: int = 1000) -> None:
        super().__init__()
        self.class_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.conv_proj = nn.Conv2d(3, dim, patch, stride=patch)
        self.encoder = Encoder((image // patch) ** 2 + 1, dim, 12, 3072, 12)
        self.head = nn.Linear(dim, classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.conv_proj(images).flatten(2).transpose(1, 2)  # [N, 196, 768]
        x = torch.cat([self.class_token.expand(x.size(0), -1, -1), x], dim=1)
        return self.head(self.encoder(x)[:, 0])


def build() -> nn.Module:
    return VisionTransformer()
