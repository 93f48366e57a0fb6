"""BERT-base (Devlin et al., 2018) encoder with its pooler: word, position (inside the model, from
the sequence length) and token-type embeddings summed and normalised, 12 post-norm encoder layers
that ignore padded positions, and a Tanh pooler on the first token. Returns (sequence, pooled).

Inputs: tokens long[N, T] and padding bool[N, T] (True marks a padded position, torch's
key_padding_mask convention). Every token has type 0: the type embedding's row 0 is added.
The encoder layers are nn.TransformerEncoderLayer (post-norm, GELU, eps 1e-12): BERT's layer.
"""

from __future__ import annotations

import torch
from torch import nn

REFERENCE = 109_482_240  # bert-base-uncased's BertModel
ONNX_UNVERIFIABLE = "TransformerEncoderLayer with a padding mask is not mapped to ONNX yet (E601)"


class BertEmbeddings(nn.Module):
    def __init__(self, vocab: int = 30522, positions: int = 512, types: int = 2, dim: int = 768) -> None:
        super().__init__()
        self.word = nn.Embedding(vocab, dim)
        self.position = nn.Embedding(positions, dim)
        self.token_type = nn.Embedding(types, dim)
        self.norm = nn.LayerNorm(dim, eps=1e-12)
        self.dropout = nn.Dropout(0.1)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(tokens.size(1))
        x = self.word(tokens) + self.position(positions) + self.token_type(torch.zeros_like(tokens))
        return self.dropout(self.norm(x))


class Bert(nn.Module):
    def __init__(self, dim: int = 768, heads: int = 12, hidden: int = 3072, layers: int = 12) -> None:
        super().__init__()
        self.embeddings = BertEmbeddings(dim=dim)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(dim, heads, hidden, activation="gelu", layer_norm_eps=1e-12, batch_first=True)
            for _ in range(layers)
        )
        self.pooler = nn.Linear(dim, dim)

    def forward(self, tokens: torch.Tensor, padding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.embeddings(tokens)
        for layer in self.layers:
            x = layer(x, src_key_padding_mask=padding)
        return x, torch.tanh(self.pooler(x[:, 0]))


def build() -> nn.Module:
    return Bert()


def inputs(batch: int, length: int = 9) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokens, and a padding mask whose first sample ends in three padded positions."""
    tokens = torch.randint(0, 30522, (batch, length))
    padding = torch.zeros(batch, length, dtype=torch.bool)
    padding[0, -3:] = True
    return tokens, padding
