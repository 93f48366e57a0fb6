"""The encoder-decoder Transformer of specs/zoo/transformer_seq2seq.nn, its layers written out
(post-norm: attention, feed-forward, then the norms, in torch's order of parameters). Token 0 is
padding: the encoder's self-attention and the decoder's cross-attention skip it; the decoder's
self-attention is causal."""

from __future__ import annotations

import torch
from torch import nn

# embeddings 2 x 64,000; encoder layers 2 x 33,472 + norm 128; decoder layers 2 x 50,240 + norm 128;
# Linear 64 x 1000 + 1000
REFERENCE = 360_680


class FeedForward(nn.Module):
    """linear1 -> ReLU -> linear2, registered as torch's transformer layers register them."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.linear1 = nn.Linear(dim, hidden)
        self.linear2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear2(torch.relu(self.linear1(x)))


class EncoderLayer(nn.Module):
    def __init__(self, dim: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ff = FeedForward(dim, hidden)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.self_attn(x, x, x, key_padding_mask=padding, need_weights=False)[0])
        return self.norm2(x + self.ff(x))


class DecoderLayer(nn.Module):
    def __init__(self, dim: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ff = FeedForward(dim, hidden)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)

    def forward(self, x, memory, causal, memory_padding):
        x = self.norm1(x + self.self_attn(x, x, x, attn_mask=causal, need_weights=False)[0])
        attended = self.cross_attn(x, memory, memory, key_padding_mask=memory_padding, need_weights=False)[0]
        x = self.norm2(x + attended)
        return self.norm3(x + self.ff(x))


class TransformerSeq2Seq(nn.Module):
    def __init__(self, vocab: int = 1000, dim: int = 64, heads: int = 4, hidden: int = 128) -> None:
        super().__init__()
        self.source_embedding = nn.Embedding(vocab, dim)
        self.encoder = nn.ModuleList([EncoderLayer(dim, heads, hidden) for _ in range(2)])
        self.encoder_norm = nn.LayerNorm(dim)
        self.target_embedding = nn.Embedding(vocab, dim)
        self.decoder = nn.ModuleList([DecoderLayer(dim, heads, hidden) for _ in range(2)])
        self.decoder_norm = nn.LayerNorm(dim)
        self.fc = nn.Linear(dim, vocab)

    def forward(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        padding = source == 0
        length = target.shape[1]
        causal = torch.triu(torch.ones(length, length, dtype=torch.bool), 1)
        memory = self.source_embedding(source)
        for layer in self.encoder:
            memory = layer(memory, padding)
        memory = self.encoder_norm(memory)
        x = self.target_embedding(target)
        for layer in self.decoder:
            x = layer(x, memory, causal, padding)
        return self.fc(self.decoder_norm(x))


def build() -> nn.Module:
    return TransformerSeq2Seq()


def inputs(batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Source (7 steps, the first sample padded after 4) and target (5 steps) tokens, 0 = padding."""
    source = torch.randint(1, 1000, (batch, 7))
    source[0, 4:] = 0
    return source, torch.randint(1, 1000, (batch, 5))
