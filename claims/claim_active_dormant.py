"""Active-dormant heads in pretrained models (Guo et al. 2024): a head that, on text of one
domain, parks its attention on the first token, whose value is small, and so writes almost
nothing (dormant), and on text of another domain attends to content and writes (active). Guo et
al. find one in Llama 2 that is active on GitHub code and dormant on Wikipedia prose.

Data: prose (sentences of a small corpus) against Python source built from seeded templates
(headatlas.prompts.patterns.code_text), both cut to the same length. The head and its direction
(dormant on prose and active on code, or the reverse) are chosen on selection texts (the filler
corpus, code with one half of the identifiers) and judged on held-out ones (the story corpus,
code with the other half, three seeds).

- Switch score: min(mean attention to the first token on the dormant domain, 1 - the same on the
  active domain), read from every query position after the first few; a head that sinks
  everywhere, or nowhere, scores low. Its null is the same score of every other head, in
  whichever direction suits that head better.
- Output ratio: the mean norm of what the head writes (z through W_O, and Gemma's post-attention
  norm) on the active domain over the dormant one, a ratio of means with a bootstrap interval.
"""

import torch
from _attn import forward_reduce

from headatlas.claims import claim
from headatlas.methods import stats, weights
from headatlas.methods.scoring import fmt_head, relative_depth
from headatlas.prompts import patterns

DOMAINS = ("prose", "code")


def texts(model, d: dict) -> dict[str, torch.Tensor]:
    """The two domains' token blocks for one data spec: {"prose": [n, T], "code": [n, T]}."""
    n, t, seed = int(d["n_prompts"]), int(d["n_tokens"]), int(d["seed"])
    return {"prose": patterns.sentence_text(model.tokenizer, corpus=str(d["prose"]), n_prompts=n, n_tokens=t, seed=seed),
            "code": patterns.code_text(model.tokenizer, n_prompts=n, n_tokens=t, seed=seed, half=str(d["code_half"]))}


def sink_and_output(bridge, tokens: torch.Tensor, start: int) -> dict[str, torch.Tensor]:
    """Per text and head, over query positions >= start: mean attention to the first token, and
    mean norm of the head's output (what it adds to the residual stream): [batch, layer, head]."""
    n_layers = bridge.cfg.n_layers
    w_o = bridge.W_O.detach().float()
    post = weights.has_post_attn_norm(bridge)
    norms: list = [None] * n_layers
    scales: list = [1.0] * n_layers

    def on_z(z, hook, layer):
        out = torch.einsum("bphd,hdm->bphm", z[:, start:].detach().float(), w_o[layer])
        norms[layer] = (out * weights.post_attn_gain(bridge, layer)).norm(dim=-1)        # [batch, pos, head]
        return z

    def on_post_scale(x, hook, layer):           # Gemma: each position's attention output is normalised
        scales[layer] = x[:, start:].detach().float().clone()                           # (this hook may fire first)
        return x

    hooks = [(f"blocks.{i}.attn.hook_z", lambda z, hook, i=i: on_z(z, hook, i)) for i in range(n_layers)]
    if post:
        hooks += [(f"blocks.{i}.ln1_post.hook_scale", lambda x, hook, i=i: on_post_scale(x, hook, i))
                  for i in range(n_layers)]
    out = forward_reduce(bridge, tokens, {"sink": lambda p: p[:, :, start:, 0].mean(-1)}, fwd_hooks=hooks, final_at=-1)
    return {"sink": out["sink"].permute(1, 0, 2),
            "norm": torch.stack([(x / sc).mean(1) for x, sc in zip(norms, scales)], 1)}


def measure(model, d: dict, start: int) -> dict[str, dict[str, torch.Tensor]]:
    return {dom: sink_and_output(model.bridge, toks, start) for dom, toks in texts(model, d).items()}


def switch(sink_dormant: torch.Tensor, sink_active: torch.Tensor) -> torch.Tensor:
    """min(mean sink on the dormant domain, 1 - mean sink on the active one), over texts (dim 0)."""
    return torch.minimum(sink_dormant.mean(0), 1 - sink_active.mean(0))


@claim("active-dormant-domain-switch")
def test_active_dormant_heads(run):
    model, p = run.model, run.params
    start = int(p["start"])

    # Select: the head and direction with the largest switch score on selection texts.
    s = measure(model, run.selection_data, start)
    by_direction = {(dormant, active): switch(s[dormant]["sink"], s[active]["sink"])
                    for dormant, active in (DOMAINS, DOMAINS[::-1])}
    (dormant, active), score = max(by_direction.items(), key=lambda kv: float(kv[1].max()))
    flat = int(score.flatten().argmax())
    layer, head = divmod(flat, model.n_heads)
    run.select([(layer, head)], selection_switch=score[layer, head], dormant_on_code=float(dormant == "code"))

    # Measure on held-out texts.
    for data in run.variants():
        m = measure(model, data, start)
        sd, sa = m[dormant]["sink"], m[active]["sink"]
        rows = torch.stack([sd[:, layer, head], sa[:, layer, head]], 1)                    # [n, 2]
        run.measure(switch=stats.bootstrap(rows, lambda x: torch.minimum(x[:, 0].mean(), 1 - x[:, 1].mean())),
                    sink_dormant_domain=sd[:, layer, head], sink_active_domain=sa[:, layer, head],
                    output_norm_ratio=stats.bootstrap_ratio(m[active]["norm"][:, layer, head],
                                                            m[dormant]["norm"][:, layer, head]),
                    top_heads_depth=relative_depth(layer, model.n_layers))
        every = torch.maximum(switch(sd, sa), switch(sa, sd)).flatten()
        run.null("all_other_heads", torch.cat([every[:flat], every[flat + 1:]]))
        if run.is_primary:
            run.artifact(scores=switch(sd, sa).tolist(),
                         score_name=f"switch score, dormant on {dormant} and active on {active} (held-out)",
                         top_heads=[fmt_head(layer, head)], dormant_on=dormant, active_on=active,
                         sink_by_domain={dom: m[dom]["sink"].mean(0).tolist() for dom in DOMAINS})

    # Conclude.
    run.conclude()
