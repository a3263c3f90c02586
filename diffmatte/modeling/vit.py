"""ViTDet-style plain ViT encoder (as used by ViTMatte/DiffMatte).

Window attention and global attention blocks with decomposed relative position
bias, conv bottleneck "residual" blocks, no final norm. Parameter names follow the
official checkpoints (``patch_embed.proj``, ``blocks.N.attn.qkv`` ...).
"""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn


def resize_rel_pos(rel_pos: torch.Tensor, length: int) -> torch.Tensor:
    """Resize a (L, C) relative-position table to (length, C) with 1-D linear interpolation."""
    if rel_pos.shape[0] == length:
        return rel_pos
    resized = F.interpolate(rel_pos.t().unsqueeze(0), size=length, mode="linear")
    return resized.squeeze(0).t()


def get_rel_pos(q_size: int, k_size: int, rel_pos: torch.Tensor) -> torch.Tensor:
    """Relative positional embeddings indexed for every (query, key) pair: (q_size, k_size, C)."""
    table = resize_rel_pos(rel_pos, int(2 * max(q_size, k_size) - 1))
    q_coords = torch.arange(q_size, device=rel_pos.device)[:, None] * max(k_size / q_size, 1.0)
    k_coords = torch.arange(k_size, device=rel_pos.device)[None, :] * max(q_size / k_size, 1.0)
    rel = (q_coords - k_coords) + (k_size - 1) * max(q_size / k_size, 1.0)
    return table[rel.long()]


class Attention(nn.Module):
    """Multi-head self-attention with decomposed (height, width) relative position bias."""

    def __init__(self, dim: int, num_heads: int, input_size: Tuple[int, int]) -> None:
        super().__init__()
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)
        self.rel_pos_h = nn.Parameter(torch.zeros(2 * input_size[0] - 1, head_dim))
        self.rel_pos_w = nn.Parameter(torch.zeros(2 * input_size[1] - 1, head_dim))

    #: Attention over more key tokens than this is computed in query chunks (exact, same
    #: result) so memory grows linearly, not quadratically, with the image area.
    chunk_tokens: int = 2048

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, _ = x.shape
        qkv = self.qkv(x).reshape(b, h * w, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # (B, heads, N, head_dim)
        rh = get_rel_pos(h, h, self.rel_pos_h).to(q.dtype)  # (h, h, head_dim)
        rw = get_rel_pos(w, w, self.rel_pos_w).to(q.dtype)
        n = h * w
        rows_per_chunk = max(1, self.chunk_tokens // w) if n > self.chunk_tokens else h
        outs = []
        for y0 in range(0, h, rows_per_chunk):
            y1 = min(h, y0 + rows_per_chunk)
            q_c = q[:, :, y0 * w:y1 * w]
            # Decomposed bias from the unscaled query, as in the official code.
            r_q = q_c.reshape(b, self.num_heads, y1 - y0, w, -1)
            # einsum returns permuted strides; the broadcast sum of those would come out
            # permuted too and the reshape below copy it (half of a global block's bias
            # time at 1 MP). Contiguous terms give a contiguous sum: same values, no copy.
            rel_h = torch.einsum("bnhwc,hkc->bnhwk", r_q, rh[y0:y1]).contiguous()
            rel_w = torch.einsum("bnhwc,wkc->bnhwk", r_q, rw).contiguous()
            bias = (rel_h[..., :, None] + rel_w[..., None, :]).reshape(b, self.num_heads, (y1 - y0) * w, n)
            outs.append(F.scaled_dot_product_attention(q_c, k, v, attn_mask=bias))
        out = outs[0] if len(outs) == 1 else torch.cat(outs, dim=2)
        out = out.transpose(1, 2).reshape(b, h, w, -1)
        return self.proj(out)


class ResBottleneck(nn.Module):
    """x + (1x1 conv -> LN -> GELU -> 3x3 conv -> LN -> GELU -> 1x1 conv -> LN), channels-first."""

    def __init__(self, channels: int, bottleneck: int) -> None:
        # timm (and the torchvision it imports, ~2 s) only once a ViT is built: the default
        # model has none, and every CLI run and service start paid for it
        from timm.layers import LayerNorm2d

        super().__init__()
        self.conv1 = nn.Conv2d(channels, bottleneck, 1, bias=False)
        self.norm1 = LayerNorm2d(bottleneck, eps=1e-6)
        self.act1 = nn.GELU()
        self.conv2 = nn.Conv2d(bottleneck, bottleneck, 3, padding=1, bias=False)
        self.norm2 = LayerNorm2d(bottleneck, eps=1e-6)
        self.act2 = nn.GELU()
        self.conv3 = nn.Conv2d(bottleneck, channels, 1, bias=False)
        self.norm3 = LayerNorm2d(channels, eps=1e-6)
        nn.init.zeros_(self.norm3.weight)
        nn.init.zeros_(self.norm3.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.norm1(self.conv1(x)))
        out = self.act2(self.norm2(self.conv2(out)))
        out = self.norm3(self.conv3(out))
        return x + out


def window_partition(x: torch.Tensor, ws: int) -> Tuple[torch.Tensor, Tuple[int, int]]:
    """Split (B, H, W, C) into (B*nW, ws, ws, C) windows, zero-padding bottom/right."""
    b, h, w, c = x.shape
    pad_h, pad_w = (ws - h % ws) % ws, (ws - w % ws) % ws
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    hp, wp = h + pad_h, w + pad_w
    x = x.view(b, hp // ws, ws, wp // ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, ws, ws, c), (hp, wp)


def window_unpartition(windows: torch.Tensor, ws: int, pad_hw: Tuple[int, int], hw: Tuple[int, int]) -> torch.Tensor:
    hp, wp = pad_hw
    h, w = hw
    b = windows.shape[0] // ((hp // ws) * (wp // ws))
    x = windows.view(b, hp // ws, wp // ws, ws, ws, -1).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, hp, wp, -1)[:, :h, :w, :].contiguous()


class Block(nn.Module):
    """Transformer block: (window or global) attention, MLP, optional conv bottleneck."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, window_size: int,
                 use_residual_block: bool, input_size: Tuple[int, int], drop_path: float = 0.0) -> None:
        from timm.layers import DropPath, Mlp   # only once a ViT is built (see ResBottleneck)

        super().__init__()
        self.window_size = window_size
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        attn_size = (window_size, window_size) if window_size > 0 else input_size
        self.attn = Attention(dim, num_heads, attn_size)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(in_features=dim, hidden_features=int(dim * mlp_ratio), act_layer=nn.GELU)
        self.residual = ResBottleneck(dim, dim // 2) if use_residual_block else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.norm1(x)
        if self.window_size > 0:
            h, w = x.shape[1], x.shape[2]
            x, pad_hw = window_partition(x, self.window_size)
            x = self.attn(x)
            x = window_unpartition(x, self.window_size, pad_hw, (h, w))
        else:
            x = self.attn(x)
        x = shortcut + self.drop_path(x)
        x = x + self.drop_path(self.mlp(self.norm2(x)))
        if self.residual is not None:
            x = self.residual(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return x


class PatchEmbed(nn.Module):
    def __init__(self, in_chans: int, embed_dim: int, patch_size: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).permute(0, 2, 3, 1)


class ViT(nn.Module):
    """Plain ViT backbone returning one (B, C, H/16, W/16) feature map."""

    def __init__(self, in_chans: int = 4, embed_dim: int = 384, depth: int = 12, num_heads: int = 6,
                 patch_size: int = 16, img_size: int = 512, pretrain_img_size: int = 224,
                 window_size: int = 14, window_block_indexes: Tuple[int, ...] = (0, 1, 3, 4, 6, 7, 9, 10),
                 residual_block_indexes: Tuple[int, ...] = (2, 5, 8, 11), mlp_ratio: float = 4.0,
                 drop_path_rate: float = 0.0) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed(in_chans, embed_dim, patch_size)
        num_positions = (pretrain_img_size // patch_size) ** 2 + 1  # + cls token, dropped at runtime
        self.pos_embed = nn.Parameter(torch.zeros(1, num_positions, embed_dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        grid = img_size // patch_size
        dpr = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio,
                  window_size if i in window_block_indexes else 0,
                  i in residual_block_indexes, (grid, grid), dpr[i])
            for i in range(depth)
        )

    def abs_pos(self, h: int, w: int) -> torch.Tensor:
        """Absolute position embedding for an h x w token grid (bicubic resize of the 14x14 table)."""
        pos = self.pos_embed[:, 1:]
        size = int(round(pos.shape[1] ** 0.5))
        if size == h and size == w:
            return pos.reshape(1, h, w, -1)
        grid = pos.reshape(1, size, size, -1).permute(0, 3, 1, 2)
        return F.interpolate(grid, size=(h, w), mode="bicubic", align_corners=False).permute(0, 2, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        x = x + self.abs_pos(x.shape[1], x.shape[2])
        for blk in self.blocks:
            x = blk(x)
        return x.permute(0, 3, 1, 2)
