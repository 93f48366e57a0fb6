"""A variational autoencoder for 28x28 images ([N, 1, 28, 28], flattened inside) (Kingma and Welling, 2013) with the
reparameterisation inside the model: z = mu + exp(0.5 * logvar) * randn_like(mu). Returns
(reconstruction, mu, logvar).

The noise is part of the model in eval mode too. tests/test_zoo.py compares the spec's module with
this twin by seeding torch's generator before each forward: randn_like is the only draw in eval,
both draw the same shape in the same order, so both see the same noise and the reconstruction
path is compared for real (mu and logvar do not depend on the noise at all). The ONNX export cannot
be compared with torch: ONNX's RandomNormalLike draws from another generator.
"""

from __future__ import annotations

import torch
from torch import nn

# encoder 784 x 400 + 400; mu and logvar 2 x (400 x 20 + 20); decoder 20 x 400 + 400, 400 x 784 + 784
REFERENCE = 652_824

ONNX_UNVERIFIABLE = "randn_like: onnxruntime's RandomNormalLike cannot draw torch's numbers"


class VAE(nn.Module):
    def __init__(self, pixels: int = 784, hidden: int = 400, latent: int = 20) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(pixels, hidden), nn.ReLU())
        self.mu = nn.Linear(hidden, latent)
        self.logvar = nn.Linear(hidden, latent)
        self.decoder = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, pixels), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = self.encoder(x.flatten(1))
        mu, logvar = self.mu(h), self.logvar(h)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        return self.decoder(z).reshape(-1, 1, 28, 28), mu, logvar


def build() -> nn.Module:
    return VAE()
