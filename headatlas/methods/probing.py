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


@dataclass
class Probes:
    """Trained per-head probes: standardization (from the training rows) and softmax weights,
    one probe per leading index."""

    mean: torch.Tensor    # [p, 1, d]
    std: torch.Tensor     # [p, 1, d]
    weight: torch.Tensor  # [p, d, classes]
    bias: torch.Tensor    # [p, 1, classes]
    lead: tuple           # the leading shape of the features the probes were trained on

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """Class logits for features [...lead, n, d] (the same leading shape): [...lead, n, classes]."""
        n, d = features.shape[-2:]
        x = (features.reshape(-1, n, d).float() - self.mean) / self.std
        with torch.no_grad():
            out = torch.einsum("pnd,pdc->pnc", x, self.weight) + self.bias
        return out.reshape(*self.lead, n, out.shape[-1])

    def predict(self, features: torch.Tensor) -> torch.Tensor:
        """Class ids for features [...lead, n, d]: [...lead, n]."""
        return self.logits(features).argmax(-1)

    def prob_correct(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The probability each probe gives the right class of each row: [...lead, n]."""
        lab = torch.as_tensor(labels).long()
        probs = self.logits(features).softmax(-1)
        return probs.gather(-1, lab.expand(probs.shape[:-1])[..., None])[..., 0]

    def correct(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Whether each row is classified right, as floats: [...lead, n]."""
        return (self.predict(features) == torch.as_tensor(labels).long()).float()


def fit_probes(features: torch.Tensor, labels: torch.Tensor, *, seed: int = 0, steps: int = 300,
               lr: float = 0.05, weight_decay: float = 1e-3) -> Probes:
    """One logistic-regression probe per leading index of features [..., n, d] on labels [n],
    trained on every row given (full-batch Adam from zero weights, standardized features)."""
    lead = tuple(features.shape[:-2])
    n, d = features.shape[-2:]
    x = features.reshape(-1, n, d).float()
    labels = torch.as_tensor(labels).long()
    classes = int(labels.max()) + 1
    mu = x.mean(1, keepdim=True)
    sd = x.std(1, keepdim=True).clamp(min=1e-6)
    x = (x - mu) / sd
    torch.manual_seed(seed)
    p = x.shape[0]
    w = torch.zeros(p, d, classes, requires_grad=True)
    b = torch.zeros(p, 1, classes, requires_grad=True)
    opt = torch.optim.Adam([w, b], lr=lr)
    with torch.enable_grad():
        for _ in range(steps):
            opt.zero_grad()
            logits = torch.einsum("pnd,pdc->pnc", x, w) + b
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, classes), labels.repeat(p), reduction="sum") / n
            loss = loss + weight_decay * (w ** 2).sum()
            loss.backward()
            opt.step()
    return Probes(mu, sd, w.detach(), b.detach(), lead)


def probe_heads(features: torch.Tensor, labels: torch.Tensor, *, test_frac: float = 0.3, seed: int = 0,
                steps: int = 300, lr: float = 0.05, weight_decay: float = 1e-3) -> ProbeResult:
    """Train one probe per leading index of features [..., n, d] on labels [n] (class ids), on a
    stratified random split; accuracy on the rest."""
    labels = torch.as_tensor(labels).long()
    classes = int(labels.max()) + 1
    tr, te = split_indices(labels, test_frac, seed)
    probes = fit_probes(features[..., tr, :], labels[tr], seed=seed, steps=steps, lr=lr, weight_decay=weight_decay)
    acc_tr = probes.correct(features[..., tr, :], labels[tr]).mean(-1)
    acc_te = probes.correct(features[..., te, :], labels[te]).mean(-1)
    chance = float(torch.bincount(labels[te], minlength=classes).max()) / len(te)
    return ProbeResult(acc_te, acc_tr, len(tr), len(te), chance)


def group_folds(groups: torch.Tensor, folds: int, seed: int) -> list[torch.Tensor]:
    """Row indices of `folds` test folds that never split a group (e.g. every statement about
    one country lands in the same fold); groups are dealt to folds in a seeded random order."""
    ids = torch.as_tensor(groups).long()
    uniq = ids.unique()
    if folds < 2 or folds > len(uniq):
        raise ValueError(f"{folds} folds need at least {folds} groups and at least 2 folds; got {len(uniq)} groups")
    order = uniq[torch.randperm(len(uniq), generator=torch.Generator().manual_seed(seed))]
    return [torch.isin(ids, order[f::folds]).nonzero().flatten() for f in range(folds)]


def grouped_cv(features: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor, *, folds: int = 4,
               seed: int = 0, steps: int = 300, lr: float = 0.05,
               weight_decay: float = 1e-3) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-validated per-head probes with whole groups held out: each row is classified by the
    probe trained on the other folds. features [..., n, d] -> (correct [..., n] as floats, the
    probability given to the right class [..., n])."""
    labels = torch.as_tensor(labels).long()
    out = torch.zeros(*features.shape[:-1])
    prob = torch.zeros(*features.shape[:-1])
    n = features.shape[-2]
    for test in group_folds(groups, folds, seed):
        train = torch.ones(n, dtype=torch.bool)
        train[test] = False
        probes = fit_probes(features[..., train, :], labels[train], seed=seed, steps=steps, lr=lr,
                            weight_decay=weight_decay)
        out[..., test] = probes.correct(features[..., test, :], labels[test])
        prob[..., test] = probes.prob_correct(features[..., test, :], labels[test])
    return out, prob


def rank_heads(features: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor, *, k: int, folds: int = 4,
               row_weights: torch.Tensor | None = None, seed: int = 0, steps: int = 300, lr: float = 0.05,
               weight_decay: float = 1e-3) -> tuple[list[tuple[int, int]], torch.Tensor]:
    """The k heads whose probes do best under grouped cross-validation (grouped_cv), from
    features [layer, head, n, d]. The score is the weighted mean of each row's correctness
    (row_weights, e.g. class weights for a balanced accuracy; plain accuracy without them). Ties
    (many heads can be right on every selection row) are broken by the mean probability the probe
    gives the right class. -> (top k as (layer, head), the score grid [layer, head])."""
    correct, prob = grouped_cv(features, labels, groups, folds=folds, seed=seed, steps=steps, lr=lr,
                               weight_decay=weight_decay)
    n = correct.shape[-1]
    cv = correct.mean(-1) if row_weights is None else (correct * row_weights).mean(-1)
    key = cv.flatten() * (4 * n) + prob.mean(-1).flatten()
    order = torch.argsort(key, descending=True, stable=True)[:k]
    n_heads = features.shape[1]
    return [(int(i) // n_heads, int(i) % n_heads) for i in order], cv
