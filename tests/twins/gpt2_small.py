"""GPT-2 small (Radford et al., 2019): token and learned position embeddings (positions inside
the model), 12 pre-norm layers with causal self-attention, a final LayerNorm and an LM head whose
weight is the token embedding's (tied: counted once, listed twice in the state_dict).

The layers are nn.TransformerEncoderLayer (pre-norm, GELU, eps 1e-5) given a causal mask and the
is_causal hint: GPT-2's block holds the same parameters (c_attn, c_proj, c_fc, c_proj, ln_1, ln_2).
It uses torch's exact GELU, where OpenAI's GPT-2 uses the tanh approximation.
"""

from __future__ import annotations

import torch
from torch import nn

REFERENCE = 124_439_808  # gpt2 (OpenAI's small model)
ONNX_UNVERIFIABLE = "TransformerEncoderLayer with a causal mask is not mapped to ONNX yet (E601)"


class GPT2(nn.Module):
    def __init__(self, vocab: int = 50257, context: int = 1024, dim: int = 768, heads: int = 12, layers: int = 12):
        super().__init__()
        self.wte = nn.Embedding(vocab, dim)
        self.wpe = nn.Embedding(context, dim)
        self.drop = nn.Dropout(0.1)
        self.h = nn.ModuleList(
            nn.TransformerEncoderLayer(dim, heads, 4 * dim, activation="gelu", batch_first=True, norm_first=True)
            for _ in range(layers)
        )
        self.ln_f = nn.LayerNorm(dim)
        self.lm_head = nn.Linear(dim, vocab, bias=False)
        self.lm_head.weight = self.wte.weight

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(tokens.size(1))
        x = self.drop(self.wte(tokens) + self.wpe(positions))
        causal = positions[None, :] > positions[:, None]  # True: a later position, not attended to
        for layer in self.h:
            x = layer(x, src_mask=causal, is_causal=True)
        return self.lm_head(self.ln_f(x))


def build() -> nn.Module:
    return GPT2()
