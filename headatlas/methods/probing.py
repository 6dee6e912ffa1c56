"""Linear probes on per-head outputs: which heads' outputs carry a property, by held-out accuracy.

One logistic-regression (softmax) probe per head, all trained together as a batch of
independent problems (full-batch Adam, fixed seed), on standardized hook_z features.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from headatlas.methods.replacement import cache_z


def head_features(bridge, tokens: torch.Tensor, position=-1) -> torch.Tensor:
    """Each head's hook_z at one position: [layer, head, batch, d_head]."""
    z = cache_z(bridge, tokens)                     # [layer, batch, pos, head, d_head]
    if isinstance(position, int):
        z = z[:, :, position]
    else:
        z = z[:, torch.arange(tokens.shape[0]), torch.as_tensor(position)]
    return z.permute(0, 2, 1, 3).contiguous()


@dataclass
class ProbeResult:
    accuracy: torch.Tensor        # [...probes] held-out accuracy
    train_accuracy: torch.Tensor  # [...probes]
    n_train: int
    n_test: int
    chance: float                 # share of the majority class in the test split


def split_indices(labels: torch.Tensor, test_frac: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A stratified random split: each class keeps the same share in train and test."""
    gen = torch.Generator().manual_seed(seed)
    train, test = [], []
    for c in labels.unique():
        idx = (labels == c).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=gen)]
        n_test = max(1, round(test_frac * len(idx)))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return torch.cat(train).sort().values, torch.cat(test).sort().values


def probe_heads(features: torch.Tensor, labels: torch.Tensor, *, test_frac: float = 0.3, seed: int = 0,
                steps: int = 300, lr: float = 0.05, weight_decay: float = 1e-3) -> ProbeResult:
    """Train one probe per leading index of features [..., n, d] on labels [n] (class ids)."""
    lead = features.shape[:-2]
    n, d = features.shape[-2:]
    x = features.reshape(-1, n, d).float()
    labels = torch.as_tensor(labels).long()
    classes = int(labels.max()) + 1
    tr, te = split_indices(labels, test_frac, seed)
    mu = x[:, tr].mean(1, keepdim=True)
    sd = x[:, tr].std(1, keepdim=True).clamp(min=1e-6)
    x = (x - mu) / sd
    torch.manual_seed(seed)
    p = x.shape[0]
    w = torch.zeros(p, d, classes, requires_grad=True)
    b = torch.zeros(p, 1, classes, requires_grad=True)
    opt = torch.optim.Adam([w, b], lr=lr)
    y = labels[tr]
    with torch.enable_grad():
        for _ in range(steps):
            opt.zero_grad()
            logits = torch.einsum("pnd,pdc->pnc", x[:, tr], w) + b
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, classes), y.repeat(p), reduction="sum") / len(tr)
            loss = loss + weight_decay * (w ** 2).sum()
            loss.backward()
            opt.step()
    with torch.no_grad():
        pred = (torch.einsum("pnd,pdc->pnc", x, w) + b).argmax(-1)
        acc_tr = (pred[:, tr] == labels[tr]).float().mean(-1)
        acc_te = (pred[:, te] == labels[te]).float().mean(-1)
    chance = float(torch.bincount(labels[te], minlength=classes).max()) / len(te)
    return ProbeResult(acc_te.reshape(lead), acc_tr.reshape(lead), len(tr), len(te), chance)
