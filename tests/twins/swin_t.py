"""Swin-T (Liu et al., 2021) for 224x224 RGB images, as torchvision's swin_t: 4x4 patches of 96
channels, stages of depths 2, 2, 6, 2 with 3, 6, 12, 24 heads, 7x7 windows, every second block's
windows shifted by 3 (with the mask that keeps shifted-in regions apart), a learned relative
position bias table per block read through a fixed index, patch merging between stages, and
stochastic depth rising linearly to 0.2.

Differences from torchvision that change no value: a block's parameters register in the order the
spec writes them (LayerNorm, then the attention's bias table, qkv and proj, LayerNorm, MLP); patch
merging registers its LayerNorm before its reduction; the index and the shift mask are computed, not
state_dict buffers.
"""

from __future__ import annotations

import torch
from torch import nn

from twins._common import Permute, StochasticDepth

REFERENCE = 28_288_354  # torchvision.models.swin_t

WINDOW = 7
STAGES = ((96, 2, 3), (192, 2, 6), (384, 6, 12), (768, 2, 24))  # width, depth, heads


def relative_position_index(window: int) -> torch.Tensor:
    """[window**2, window**2]: the bias table's row for each (query, key) pair of a window."""
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
    relative = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
    return relative[:, :, 0] * (2 * window - 1) + relative[:, :, 1]


def shift_mask(height: int, width: int, window: int, shift: int) -> torch.Tensor:
    """[windows, window**2, window**2]: 0 where two positions of a shifted window came from the
    same region of the image, -100 where not."""
    regions = torch.zeros(height, width)
    bounds = ((0, -window), (-window, -shift), (-shift, None))
    for i, (h0, h1) in enumerate(bounds):
        for j, (w0, w1) in enumerate(bounds):
            regions[h0:h1, w0:w1] = 3 * i + j
    regions = regions.view(height // window, window, width // window, window).permute(0, 2, 1, 3)
    regions = regions.reshape(-1, window * window)
    return (regions[:, None, :] - regions[:, :, None]).ne(0).float() * -100.0


class WindowAttention(nn.Module):
    """Self-attention inside each window of a [N, H, W, C] map, the windows shifted by ``shift``."""

    def __init__(self, dim: int, heads: int, shift: int) -> None:
        super().__init__()
        self.heads, self.shift = heads, shift
        self.relative_position_bias_table = nn.Parameter(
            nn.init.trunc_normal_(torch.zeros((2 * WINDOW - 1) ** 2, heads), std=0.02)
        )
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.register_buffer("index", relative_position_index(WINDOW), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, h, w, c = x.shape  # h and w are multiples of the window here (56, 28, 14, 7)
        shift = self.shift if WINDOW < h else 0
        if shift:
            x = torch.roll(x, (-shift, -shift), (1, 2))
        windows = x.view(n, h // WINDOW, WINDOW, w // WINDOW, WINDOW, c).permute(0, 1, 3, 2, 4, 5)
        windows = windows.reshape(-1, WINDOW * WINDOW, c)
        q, k, v = self.qkv(windows).reshape(windows.size(0), -1, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        attn = (q * (c // self.heads) ** -0.5) @ k.transpose(-2, -1)
        attn = attn + self.relative_position_bias_table[self.index].permute(2, 0, 1)
        if shift:
            mask = shift_mask(h, w, WINDOW, shift)
            attn = (attn.view(n, -1, self.heads, WINDOW**2, WINDOW**2) + mask[None, :, None]).flatten(0, 1)
        out = self.proj((attn.softmax(-1) @ v).transpose(1, 2).reshape(windows.size(0), -1, c))
        out = out.view(n, h // WINDOW, w // WINDOW, WINDOW, WINDOW, c).permute(0, 1, 3, 2, 4, 5).reshape(n, h, w, c)
        return torch.roll(out, (shift, shift), (1, 2)) if shift else out


class SwinBlock(nn.Module):
    def __init__(self, dim: int, heads: int, shift: int, drop: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, heads, shift)
        self.stochastic_depth = StochasticDepth(drop, "row")
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Dropout(0.0), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.stochastic_depth(self.attn(self.norm1(x)))
        return x + self.stochastic_depth(self.mlp(self.norm2(x)))


class PatchMerging(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1)
        return self.reduction(self.norm(x))


class SwinTransformer(nn.Module):
    def __init__(self, classes: int = 1000, drop: float = 0.2) -> None:
        super().__init__()
        total = sum(depth for _, depth, _ in STAGES)
        layers: list[nn.Module] = [nn.Conv2d(3, 96, 4, stride=4), Permute(0, 2, 3, 1), nn.LayerNorm(96)]
        index = 0
        for stage, (dim, depth, heads) in enumerate(STAGES):
            for i in range(depth):
                layers.append(SwinBlock(dim, heads, 0 if i % 2 == 0 else WINDOW // 2, drop * index / (total - 1)))
                index += 1
            if stage + 1 < len(STAGES):
                layers.append(PatchMerging(dim))
        self.features = nn.Sequential(*layers)
        self.norm = nn.LayerNorm(768)
        self.head = nn.Linear(768, classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.features(images))  # [N, 7, 7, 768]
        return self.head(x.mean((1, 2)))


def build() -> nn.Module:
    return SwinTransformer()
