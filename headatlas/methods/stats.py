"""The statistics a claim rests on: bootstrap intervals over prompts, null distributions over
matched head sets, and empirical percentiles.

Everything is seeded and vectorised: a bootstrap is one index tensor [n_boot, n_prompts], a
null over head sets is one index tensor [n_sets, k], so the cost is a few tensor reductions,
not a Python loop per resample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

Head = tuple[int, int]

N_BOOT = 1000
N_NULL = 999
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Estimate:
    """A value averaged over prompts with its seeded percentile-bootstrap interval."""

    value: float
    low: float
    high: float
    n: int

    def as_dict(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high, "n": self.n}


def _as_tensor(values) -> torch.Tensor:
    t = torch.as_tensor(values, dtype=torch.float64).detach().flatten()
    if t.numel() == 0:
        raise ValueError("no per-prompt values to average")
    return t


def _resample_index(n: int, n_boot: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(int(seed))
    return torch.randint(0, n, (n_boot, n), generator=gen)


def _interval(boot: torch.Tensor, value: float, n: int) -> Estimate:
    alpha = (1 - CONFIDENCE) / 2
    boot = boot[torch.isfinite(boot)]
    if boot.numel() == 0:
        return Estimate(value, value, value, n)
    lo, hi = torch.quantile(boot, torch.tensor([alpha, 1 - alpha], dtype=boot.dtype)).tolist()
    return Estimate(float(value), float(lo), float(hi), n)


def bootstrap_mean(values, n_boot: int = N_BOOT, seed: int = 0) -> Estimate:
    """Mean over prompts and its 95% percentile-bootstrap interval (resampling prompts)."""
    x = _as_tensor(values)
    if x.numel() == 1:
        v = float(x[0])
        return Estimate(v, v, v, 1)
    idx = _resample_index(x.numel(), n_boot, seed)
    return _interval(x[idx].mean(1), float(x.mean()), x.numel())


def bootstrap_ratio(numerator, denominator, n_boot: int = N_BOOT, seed: int = 0) -> Estimate:
    """Ratio of means (a share, a fraction recovered): prompts are resampled together and the
    ratio recomputed per resample, not numerator and denominator separately."""
    num, den = _as_tensor(numerator), _as_tensor(denominator)
    if num.shape != den.shape:
        raise ValueError(f"numerator has {num.numel()} prompts, denominator {den.numel()}")
    value = float(num.mean() / den.mean())
    if num.numel() == 1:
        return Estimate(value, value, value, 1)
    idx = _resample_index(num.numel(), n_boot, seed)
    return _interval(num[idx].mean(1) / den[idx].mean(1), value, num.numel())


def bootstrap(per_prompt: torch.Tensor, statistic: Callable[[torch.Tensor], torch.Tensor],
              n_boot: int = N_BOOT, seed: int = 0) -> Estimate:
    """Any statistic of per-prompt rows: `statistic` maps rows [n_prompts, ...] to a scalar; it
    is applied to the data and to each resample of its rows (slower than the two above: a
    Python call per resample)."""
    x = torch.as_tensor(per_prompt).double()
    value = float(statistic(x))
    idx = _resample_index(x.shape[0], n_boot, seed)
    boot = torch.tensor([float(statistic(x[i])) for i in idx], dtype=torch.float64)
    return _interval(boot, value, x.shape[0])


# ----------------------------------------------------------------------------- nulls


def empirical_p(observed: float, null: Sequence[float] | torch.Tensor, greater: bool = True) -> float:
    """(1 + #{null at least as extreme}) / (1 + N): the +1-corrected empirical p-value."""
    n = torch.as_tensor(null, dtype=torch.float64).flatten()
    extreme = (n >= observed) if greater else (n <= observed)
    return float((1 + int(extreme.sum())) / (1 + n.numel()))


def auc(scores, labels) -> float:
    """Area under the ROC curve: the chance that a positive (label 1) scores above a negative,
    ties counting half (the Mann-Whitney statistic). It reads how well a score separates the two
    classes whatever threshold the model applies, so a model biased toward one answer can still
    separate them."""
    s, y = _as_tensor(scores).double().flatten(), _as_tensor(labels).bool().flatten()
    pos, neg = s[y], s[~y]
    if pos.numel() == 0 or neg.numel() == 0:
        raise ValueError("auc needs at least one score of each class")
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0).double() + 0.5 * (diff == 0).double()).mean())


def percentile(null: Sequence[float] | torch.Tensor, q: float) -> float:
    n = torch.as_tensor(null, dtype=torch.float64).flatten()
    return float(torch.quantile(n, q / 100.0))


def z_score(observed: float, null: Sequence[float] | torch.Tensor) -> float:
    n = torch.as_tensor(null, dtype=torch.float64).flatten()
    sd = float(n.std()) if n.numel() > 1 else 0.0
    if sd == 0.0 or not math.isfinite(sd):
        return math.inf if observed > float(n.mean()) else (-math.inf if observed < float(n.mean()) else 0.0)
    return (observed - float(n.mean())) / sd


def matched_head_sets(heads: Sequence[Head], n_layers: int, n_heads: int, n_sets: int = N_NULL,
                      seed: int = 0, exclude: Sequence[Head] = (), match: str = "layer",
                      band: int = 1) -> torch.Tensor:
    """Random head sets matched to `heads`: [n_sets, k, 2] (layer, head).

    match="layer": each claimed head is replaced by a random head of the same layer (so late
    heads are compared with late heads); match="band": by a head within `band` layers of it;
    match="any": by any head. Heads in `exclude` (normally the claimed ones) are never drawn,
    and a set never holds the same head twice where the pool allows it."""
    gen = torch.Generator().manual_seed(int(seed))
    skip = {tuple(map(int, h)) for h in exclude}
    pools = []
    for layer, _ in heads:
        if match == "layer":
            layers = [layer]
        elif match == "band":
            layers = range(max(0, layer - band), min(n_layers, layer + band + 1))
        elif match == "any":
            layers = range(n_layers)
        else:
            raise ValueError(f"unknown match {match!r}; expected layer, band or any")
        pool = [(la, h) for la in layers for h in range(n_heads) if (la, h) not in skip]
        if not pool:  # every head of the layer is claimed: widen to the neighbouring layers
            pool = [(la, h) for la in range(max(0, layer - 1), min(n_layers, layer + 2))
                    for h in range(n_heads) if (la, h) not in skip]
        pools.append(torch.tensor(pool, dtype=torch.long))
    k = len(heads)
    out = torch.empty(n_sets, k, 2, dtype=torch.long)
    for j, pool in enumerate(pools):
        out[:, j] = pool[torch.randint(0, len(pool), (n_sets,), generator=gen)]
    # Redraw repeats within a set (rare; a set of distinct heads is what "k heads" means).
    for s in range(n_sets):
        seen: set[tuple[int, int]] = set()
        for j in range(k):
            h = tuple(out[s, j].tolist())
            tries = 0
            while h in seen and tries < 20:
                pool = pools[j]
                h = tuple(pool[int(torch.randint(0, len(pool), (1,), generator=gen))].tolist())
                tries += 1
            out[s, j] = torch.tensor(h)
            seen.add(h)
    return out


def set_sums(per_head: torch.Tensor, sets: torch.Tensor) -> torch.Tensor:
    """For an additive per-head measure [layer, head] (or [layer, head, n_prompts]), its sum over
    each head set [n_sets, k, 2] -> [n_sets] (or [n_sets, n_prompts])."""
    return per_head[sets[..., 0], sets[..., 1]].sum(1)


def set_means(per_head: torch.Tensor, sets: torch.Tensor) -> torch.Tensor:
    return per_head[sets[..., 0], sets[..., 1]].mean(1)


def set_maxes(per_head: torch.Tensor, sets: torch.Tensor) -> torch.Tensor:
    return per_head[sets[..., 0], sets[..., 1]].max(1).values
