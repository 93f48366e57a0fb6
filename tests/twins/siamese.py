"""A Siamese network: one convolutional tower (one set of weights) embeds two images; returns
both embeddings and their cosine similarity."""

from __future__ import annotations

import torch
from torch import nn

REFERENCE = 1_792  # one tower: Conv2d 8 x 9 + 8, Conv2d 16 x 8 x 9 + 16, Linear 16 x 32 + 32


class Siamese(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.tower = nn.Sequential(
            nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(16, 32),
        )  # fmt: skip
        self.similarity = nn.CosineSimilarity(dim=1)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        ea, eb = self.tower(a), self.tower(b)
        return ea, eb, self.similarity(ea, eb)


def build() -> nn.Module:
    return Siamese()
