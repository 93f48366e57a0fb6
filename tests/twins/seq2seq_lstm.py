"""A sequence-to-sequence LSTM: the encoder reads the source tokens, its final (h, c) is the
decoder's initial state, and the decoder's outputs (teacher forcing: the target tokens are its
input) become vocabulary logits."""

from __future__ import annotations

import torch
from torch import nn

# embeddings 2 x 1000 x 64; LSTMs 2 x (4 x 128 x (64 + 128) + 2 x 4 x 128); Linear 128 x 1000 + 1000
REFERENCE = 455_656
ONNX_UNVERIFIABLE = "an LSTM given an initial state is not mapped to ONNX yet (E601)"


class Seq2Seq(nn.Module):
    def __init__(self, vocab: int = 1000, dim: int = 64, hidden: int = 128) -> None:
        super().__init__()
        self.source_embedding = nn.Embedding(vocab, dim)
        self.encoder = nn.LSTM(dim, hidden, batch_first=True)
        self.target_embedding = nn.Embedding(vocab, dim)
        self.decoder = nn.LSTM(dim, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, vocab)

    def forward(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _, (h, c) = self.encoder(self.source_embedding(source))
        out, _ = self.decoder(self.target_embedding(target), (h, c))
        return self.fc(out)


def build() -> nn.Module:
    return Seq2Seq()


def inputs(batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Source and target of different lengths (7 and 5 steps)."""
    return torch.randint(0, 1000, (batch, 7)), torch.randint(0, 1000, (batch, 5))
