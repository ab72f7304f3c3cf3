"""A small GPT in the challenge's architecture family (tied embedding,
RMSNorm, q/k/v/proj attention, a 4x relu-squared MLP, control tensors),
trained for a few seconds on a learnable token stream, for tests that need a
real model whose output can get worse."""

import torch
import torch.nn.functional as F
from torch import nn


def rms_norm(x):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)


class RMSNorm(nn.Module):
    def forward(self, x):
        return rms_norm(x)


class Attention(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.heads, self.head_dim = heads, width // heads
        self.c_q = nn.Linear(width, width, bias=False)
        self.c_k = nn.Linear(width, width, bias=False)
        self.c_v = nn.Linear(width, width, bias=False)
        self.proj = nn.Linear(width, width, bias=False)
        self.q_gain = nn.Parameter(torch.full((heads,), 1.5))

    def forward(self, x):
        b, t, _ = x.shape
        split = lambda y: y.view(b, t, self.heads, self.head_dim).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.c_q(x)), split(self.c_k(x)), split(self.c_v(x))
        q = rms_norm(q) * self.q_gain[None, :, None, None]
        y = F.scaled_dot_product_attention(q, rms_norm(k), v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(b, t, -1))


class MLP(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.fc = nn.Linear(width, 4 * width, bias=False)
        self.proj = nn.Linear(4 * width, width, bias=False)

    def forward(self, x):
        return self.proj(F.relu(self.fc(x)).square())


class Block(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.attn_scale = nn.Parameter(torch.ones(width))
        self.mlp_scale = nn.Parameter(torch.ones(width))
        self.attn, self.mlp = Attention(width, heads), MLP(width)

    def forward(self, x):
        x = x + self.attn_scale * self.attn(rms_norm(x))
        return x + self.mlp_scale * self.mlp(rms_norm(x))


class TinyGPT(nn.Module):
    def __init__(self, vocab=256, width=128, layers=2, heads=4):
        super().__init__()
        self.vocab = vocab
        self.tok_emb = nn.Embedding(vocab, width)
        nn.init.normal_(self.tok_emb.weight, std=0.05)
        self.blocks = nn.ModuleList(Block(width, heads) for _ in range(layers))
        self.final_norm = RMSNorm()

    def forward(self, ids):
        x = rms_norm(self.tok_emb(ids))
        for block in self.blocks:
            x = block(x)
        return F.linear(self.final_norm(x), self.tok_emb.weight)


def token_stream(vocab, length, seed):
    """A Markov stream: each token has 4 likely successors (a sparse random
    table), and one token in ten is uniform noise."""
    g = torch.Generator().manual_seed(seed)
    table = torch.randint(0, vocab, (vocab, 4), generator=g).tolist()
    choice = torch.randint(0, 4, (length,), generator=g).tolist()
    noise = (torch.rand(length, generator=g) < 0.1).tolist()
    random = torch.randint(0, vocab, (length,), generator=g).tolist()
    out = [random[0]]
    for i in range(1, length):
        out.append(random[i] if noise[i] else table[out[-1]][choice[i]])
    return torch.tensor(out)


def batches(stream, batch, seq, count, seed):
    g = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, len(stream) - seq - 1, (count, batch), generator=g)
    return [torch.stack([stream[s : s + seq + 1] for s in row]) for row in starts]


def loss(model, data):
    """Mean next-token cross-entropy (nats) over `data` (batches of seq+1)."""
    with torch.no_grad():
        total = 0.0
        for b in data:
            logits = model(b[:, :-1])
            total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), b[:, 1:].reshape(-1)).item()
    return total / len(data)


def trained(steps=300, seed=0):
    """A TinyGPT trained with AdamW; returns (model, train stream, held-out batches)."""
    torch.manual_seed(seed)
    model = TinyGPT()
    stream = token_stream(model.vocab, 60_000, seed)
    train, held = stream[:50_000], stream[50_000:]
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    for b in batches(train, 32, 64, steps, seed + 1):
        logits = model(b[:, :-1])
        l = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), b[:, 1:].reshape(-1))
        opt.zero_grad()
        l.backward()
        opt.step()
    return model, train, batches(held, 16, 64, 8, seed + 2)
