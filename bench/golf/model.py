"""The challenge's model family, scaled by a config: the baseline record's GPT
(openai/parameter-golf, records/track_10min_16mb/2026-03-17_NaiveBaseline,
MIT licensed) with its tensor names, so pgq's shipped recipes apply as they
do to a submission: tied embeddings, RMSNorm, attention with q/k/v/proj
(RoPE, q/k RMS-normed, a per-head q gain), a relu-squared MLP, U-Net skips
and the control tensors (attn_scale, mlp_scale, resid_mix, q_gain,
skip_weights). Float32 throughout: this runs on a CPU."""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclasses.dataclass(frozen=True)
class Config:
    vocab: int
    layers: int
    dim: int
    heads: int
    kv_heads: int
    mlp_mult: int
    seq_len: int
    logit_softcap: float = 30.0
    rope_base: float = 10000.0
    qk_gain_init: float = 1.5
    tied_embed_init_std: float = 0.005

    def parameters(self) -> int:
        head_dim = self.dim // self.heads
        kv = self.kv_heads * head_dim
        block = 2 * self.dim * self.dim + 2 * self.dim * kv + 2 * self.mlp_mult * self.dim * self.dim
        control = 4 * self.dim + self.heads
        skips = min(self.layers // 2, self.layers - self.layers // 2) * self.dim
        return self.vocab * self.dim + self.layers * (block + control) + skips


# `--size cpu`: trains to a useful loss on 2 CPU cores in about 10 minutes.
# Width 320 (5 heads of 64) rather than 256: every attention matrix then has
# more than 65,536 elements, so the shipped recipes' "keep tensors of at most
# 65,536 elements as fp16" rule (meant for control tensors) leaves them to be
# quantized, as it does at the challenge's width 512. Full multi-head
# attention: 5 heads do not split into kv groups, and a kv width of 160
# would fall under that rule.
SIZES = {
    "cpu": Config(vocab=1024, layers=4, dim=320, heads=5, kv_heads=5, mlp_mult=4, seq_len=256),
    # The 36M shape of pgq's demo model (`pgq demo`): 11 layers of 512, kv
    # 256, MLP 4x; vocab 1024 here (the bench's tokenizer), for a GPU.
    "gpu": Config(vocab=1024, layers=11, dim=512, heads=8, kv_heads=4, mlp_mult=4, seq_len=1024),
}


class RMSNorm(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.rms_norm(x, (x.size(-1),))


class Rotary(nn.Module):
    def __init__(self, dim: int, base: float):
        super().__init__()
        inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, seq_len: int, device: torch.device) -> tuple[Tensor, Tensor]:
        t = torch.arange(seq_len, device=device, dtype=torch.float32)
        freqs = torch.outer(t, self.inv_freq)
        return freqs.cos()[None, None], freqs.sin()[None, None]


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    half = x.size(-1) // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat((x1 * cos + x2 * sin, x1 * (-sin) + x2 * cos), dim=-1)


class CausalSelfAttention(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.heads, self.kv_heads = c.heads, c.kv_heads
        self.head_dim = c.dim // c.heads
        kv = c.kv_heads * self.head_dim
        self.c_q = nn.Linear(c.dim, c.dim, bias=False)
        self.c_k = nn.Linear(c.dim, kv, bias=False)
        self.c_v = nn.Linear(c.dim, kv, bias=False)
        self.proj = nn.Linear(c.dim, c.dim, bias=False)
        nn.init.zeros_(self.proj.weight)
        self.q_gain = nn.Parameter(torch.full((c.heads,), c.qk_gain_init))
        self.rotary = Rotary(self.head_dim, c.rope_base)

    def forward(self, x: Tensor) -> Tensor:
        b, t, d = x.shape
        q = self.c_q(x).reshape(b, t, self.heads, self.head_dim).transpose(1, 2)
        k = self.c_k(x).reshape(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.c_v(x).reshape(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        q, k = F.rms_norm(q, (q.size(-1),)), F.rms_norm(k, (k.size(-1),))
        cos, sin = self.rotary(t, x.device)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        q = q * self.q_gain[None, :, None, None]
        y = F.scaled_dot_product_attention(
            q, k, v, is_causal=True, enable_gqa=self.kv_heads != self.heads
        )
        return self.proj(y.transpose(1, 2).reshape(b, t, d))


class MLP(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.fc = nn.Linear(c.dim, c.mlp_mult * c.dim, bias=False)
        self.proj = nn.Linear(c.mlp_mult * c.dim, c.dim, bias=False)
        nn.init.zeros_(self.proj.weight)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(torch.relu(self.fc(x)).square())


class Block(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.attn_norm, self.mlp_norm = RMSNorm(), RMSNorm()
        self.attn = CausalSelfAttention(c)
        self.mlp = MLP(c)
        self.attn_scale = nn.Parameter(torch.ones(c.dim))
        self.mlp_scale = nn.Parameter(torch.ones(c.dim))
        self.resid_mix = nn.Parameter(torch.stack((torch.ones(c.dim), torch.zeros(c.dim))))

    def forward(self, x: Tensor, x0: Tensor) -> Tensor:
        x = self.resid_mix[0] * x + self.resid_mix[1] * x0
        x = x + self.attn_scale * self.attn(self.attn_norm(x))
        return x + self.mlp_scale * self.mlp(self.mlp_norm(x))


class GPT(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.config = c
        self.tok_emb = nn.Embedding(c.vocab, c.dim)
        nn.init.normal_(self.tok_emb.weight, std=c.tied_embed_init_std)
        self.encoder_layers = c.layers // 2
        self.decoder_layers = c.layers - self.encoder_layers
        self.skip_weights = nn.Parameter(
            torch.ones(min(self.encoder_layers, self.decoder_layers), c.dim)
        )
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.layers))
        self.final_norm = RMSNorm()

    def logits(self, ids: Tensor) -> Tensor:
        x = F.rms_norm(self.tok_emb(ids), (self.config.dim,))
        x0, skips = x, []
        for i in range(self.encoder_layers):
            x = self.blocks[i](x, x0)
            skips.append(x)
        for i in range(self.decoder_layers):
            if skips:
                x = x + self.skip_weights[i] * skips.pop()
            x = self.blocks[self.encoder_layers + i](x, x0)
        logits = F.linear(self.final_norm(x), self.tok_emb.weight)
        cap = self.config.logit_softcap
        return cap * torch.tanh(logits / cap)

    def forward(self, ids: Tensor, targets: Tensor | None = None) -> Tensor:
        logits = self.logits(ids)
        if targets is None:
            return logits
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))


def newton_schulz(g: Tensor, steps: int) -> Tensor:
    """Muon's orthogonalisation (the records' zeropower_via_newtonschulz5, in
    float32: bfloat16 matmuls are slow on a CPU)."""
    a, b, c = 3.4445, -4.7750, 2.0315
    x = g / (g.norm() + 1e-7)
    transposed = g.size(0) > g.size(1)
    if transposed:
        x = x.T
    for _ in range(steps):
        m = x @ x.T
        x = a * x + (b * m + c * m @ m) @ x
    return x.T if transposed else x


class Muon(torch.optim.Optimizer):
    """The records' Muon on one process: momentum, Nesterov, Newton-Schulz,
    the max(1, rows/cols)^0.5 scale correction."""

    def __init__(self, params, lr: float, momentum: float, steps: int = 5):
        super().__init__(params, dict(lr=lr, momentum=momentum, steps=steps))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                buf = self.state[p].setdefault("momentum", torch.zeros_like(p.grad))
                buf.mul_(group["momentum"]).add_(p.grad)
                g = newton_schulz(p.grad.add(buf, alpha=group["momentum"]), group["steps"])
                g *= math.sqrt(max(1.0, g.size(0) / g.size(1)))
                p.add_(g, alpha=-group["lr"])
