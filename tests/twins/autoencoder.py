"""The convolutional autoencoder of specs/zoo/autoencoder.nn: returns (reconstruction, code)."""

from __future__ import annotations

import torch
from torch import nn

REFERENCE = 210_369  # convs 160 + 4,640 + 100,416; transposed 100,384 + 4,624 + 145


class ConvAutoencoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 16, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 7),
        )  # fmt: skip
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(64, 32, 7), nn.ReLU(),
            nn.ConvTranspose2d(32, 16, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
            nn.ConvTranspose2d(16, 1, 3, stride=2, padding=1, output_padding=1), nn.Sigmoid(),
        )  # fmt: skip

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        code = self.encoder(images)
        return self.decoder(code), code


def build() -> nn.Module:
    return ConvAutoencoder()
