"""The Transformer text classifier of specs/zoo/text_transformer.nn: post-norm encoder layers
written out (attention, norm, feed-forward, norm: the spec's order of parameters), mean-pooled."""

from __future__ import annotations

import torch
from torch import nn

REFERENCE = 1_545_476  # embedding 1,280,000 + 2 layers x 132,480 + Linear 516


class EncoderLayer(nn.Module):
    def __init__(self, dim: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm1 = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(0.1), nn.Linear(hidden, dim))
        self.norm2 = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.attn(x, x, x, need_weights=False)[0])
        return self.norm2(x + self.ff(x))


class TextTransformer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(10000, 128)
        self.layers = nn.Sequential(EncoderLayer(128, 4, 256), EncoderLayer(128, 4, 256))
        self.fc = nn.Linear(128, 4)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.fc(self.layers(self.embedding(tokens)).mean(1))


def build() -> nn.Module:
    return TextTransformer()
