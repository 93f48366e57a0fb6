"""The GRU sequence classifier of specs/zoo/gru_classifier.nn: the last step of a 2-layer GRU."""

from __future__ import annotations

import torch
from torch import nn

REFERENCE = 161_034  # GRU 60,672 + 99,072; Linear 1,290


class GRUClassifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(28, 128, num_layers=2, batch_first=True, dropout=0.1)
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(128, 10)

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(rows)
        return self.fc(self.dropout(out[:, -1]))


def build() -> nn.Module:
    return GRUClassifier()
