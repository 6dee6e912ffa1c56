"""The indirect-object-identification (IOI) circuit: name movers, self-repair and backup name
movers, negative name movers, copy suppression and S-inhibition (Wang et al. 2022; McDougall et
al. 2023).

Every claim follows the same shape: the heads are chosen once on the selection prompts (another
template and seed than any held-out variant), frozen with run.select(), and judged on each
held-out variant against a null (the same measure over many head sets matched by layer, or over
every head). The measuring passes are in headatlas.methods.ioi (one pass per data variant gives
attention from END, every head's frozen-scale direct logit attribution and its IO-copy term),
path patching in headatlas.methods.patching, frozen-scale attribution in
headatlas.methods.logit_attribution; this file selects, measures and concludes.

A model that does not do the task (on the prompts it is measured on, it prefers the IO over the
subject on too few prompts, or not at all on average) is "not applicable", with the figures.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from headatlas.claims import claim
from headatlas.methods import ioi as mioi
from headatlas.methods import ov, scoring, stats, weights
from headatlas.methods.scoring import fmt_head, parse_head, relative_depth
from headatlas.prompts import ioi as ioi_prompts

Head = tuple[int, int]

# ============================================================================ shared passes


_CACHE: dict[tuple, Any] = {}


def _cached(kind: str, model, parts: Any, make: Callable[[], Any]):
    key = (kind, model.name, json.dumps(parts, sort_keys=True, default=str))
    if key not in _CACHE:
        _CACHE[key] = make()
    return _CACHE[key]


@dataclass
class Base:
    """Clean and ABC passes of one data set."""

    data: ioi_prompts.IOIData
    clean: mioi.Pass
    src_z: list          # per layer [n, pos, head, d_head] on the ABC prompts (patching source)
    means: list          # per layer [1, pos, head, d_head] ABC means (mean-ablation values)
    ld_corrupted: float

    @property
    def ld(self) -> float:
        return float(self.clean.logit_diff.mean())

    @property
    def accuracy(self) -> float:
        return float((self.clean.logit_diff > 0).float().mean())

    @property
    def dla(self) -> torch.Tensor:
        return self.clean.mean("dla")

    @property
    def io_copy(self) -> torch.Tensor:
        """[layer, head] DLA through attention to the IO token: the name-mover score."""
        return self.clean.mean("dla_src")[..., 0]

    @property
    def attn(self) -> torch.Tensor:
        return self.clean.mean("attn")


def base(model, data: dict) -> Base:
    def make():
        d = ioi_prompts.from_spec(model, data)
        clean = mioi.ioi_pass(model.bridge, d, keep_z=True)
        corrupted = mioi.ioi_pass(model.bridge, d, tokens=d.corrupted, keep_z=True)
        means = [z.mean(0, keepdim=True) for z in corrupted.z_all]
        return Base(d, clean, corrupted.z_all, means, float(corrupted.logit_diff.mean()))
    ioi_keys = ("generator", "template", "n_prompts", "seed")
    return _cached("base", model, {k: data[k] for k in ioi_keys}, make)


def require_task(run, b: Base, where: str) -> None:
    """Not applicable unless the model prefers the IO over the subject: a positive mean logit
    difference and at least `min_accuracy` of the prompts."""
    need = float(run.params["min_accuracy"])
    if b.ld <= 0 or b.accuracy < need:
        run.not_applicable(f"on the {where} prompts ({b.data.n}) the model prefers the IO over the subject on "
                           f"{b.accuracy:.0%} of them, mean logit(IO) - logit(S) {b.ld:.2f}; the IOI claims need a "
                           f"positive mean and at least {need:.0%}")


def selection_base(run) -> Base:
    b = base(run.model, run.selection_data)
    require_task(run, b, "selection")
    run.measure(selection_logit_diff=b.clean.logit_diff)
    return b


def held_out_base(run) -> Base:
    b = base(run.model, run.data)
    require_task(run, b, f"held-out ({run.data['template']})")
    run.measure(logit_diff=b.clean.logit_diff, accuracy=b.accuracy, logit_diff_corrupted=b.ld_corrupted)
    return b


def top_by(score: torch.Tensor, k: int, allowed: Callable[[Head], bool] | None = None) -> list[Head]:
    """The k (layer, head) with the highest score (optionally among `allowed`), best first."""
    n_heads = score.shape[1]
    out = []
    for i in torch.argsort(score.flatten(), descending=True).tolist():
        h = (i // n_heads, i % n_heads)
        if allowed is None or allowed(h):
            out.append(h)
        if len(out) == k:
            break
    return out


def name_movers(b: Base, k: int) -> list[Head]:
    """The k heads with the largest positive IO-copy DLA (selection only)."""
    return top_by(b.io_copy, k)


def negative_name_movers(b: Base, k: int) -> list[Head]:
    """The k heads with the most negative IO-copy DLA (selection only)."""
    return top_by(-b.io_copy, k)


def s_inhibition_candidates(b: Base, nms: Sequence[Head], k: int) -> list[Head]:
    """The k heads in the layers before the first name mover that attend most from END to S2."""
    first = min(layer for layer, _ in nms)
    return top_by(b.attn[..., 2], k, allowed=lambda h: h[0] < first)


def heads_str(heads: Sequence[Head]) -> list[str]:
    return [fmt_head(*h) for h in heads]


def depth(heads: Sequence[Head], n_layers: int) -> float:
    return statistics.median(relative_depth(layer, n_layers) for layer, _ in heads)


def per_prompt_sum(x: torch.Tensor, heads: Sequence[Head]) -> torch.Tensor:
    """x [n, layer, head] summed over the heads -> [n]."""
    return torch.stack([x[:, la_, h] for la_, h in heads], -1).sum(-1)


def per_prompt_mean(x: torch.Tensor, heads: Sequence[Head]) -> torch.Tensor:
    return torch.stack([x[:, la_, h] for la_, h in heads], -1).mean(-1)


def null_sets(run, heads: Sequence[Head], n_sets: int, exclude: Sequence[Head] = (), match: str = "layer") -> torch.Tensor:
    m = run.model
    return stats.matched_head_sets(heads, m.n_layers, m.n_heads, n_sets=n_sets, seed=int(run.params.get("null_seed", 0)),
                                   exclude=list(heads) + list(exclude), match=match)


def minus(est: stats.Estimate) -> stats.Estimate:
    """1 - a ratio, with its interval."""
    return stats.Estimate(1.0 - est.value, 1.0 - est.high, 1.0 - est.low, est.n)


def ablated_at_end(model, data: dict, b: Base, head_sets: Sequence[Sequence[Head]]) -> mioi.Pass:
    """The clean prompts once per head set, each set mean-ablated (ABC means) at END only, in one pass."""
    sets = [tuple(sorted(tuple(h) for h in s)) for s in head_sets]

    def make():
        n = b.data.n
        hooks = mioi.z_hooks_at(sets, b.means, b.data.end, n)
        return mioi.ioi_pass(model.bridge, b.data, tokens=b.data.clean.repeat(len(sets), 1), fwd_hooks=hooks)
    return _cached("ablated", model, [data, sets], make)


def vocab_sample(model, n: int, seed: int) -> torch.Tensor:
    return ov.default_vocab_sample(model.tokenizer, model.bridge.cfg.d_vocab, n=int(n), seed=int(seed))


def ov_self_z(model, n: int, seed: int) -> torch.Tensor:
    """[layer, head, token] z-score of each sampled token's own logit within the row of logits a
    head's OV circuit writes when it attends fully to that token (McDougall et al.: strongly
    negative = suppresses what it attends to; strongly positive = copies it). Input: the residual
    after block 0 for the token alone; the head's own input norm, W_V W_O, Gemma's post-attention
    norm gain and the final norm's gain apply (a positive per-row scale leaves z-scores as they
    are). Weights only; cached per vocabulary sample."""
    return _cached("ov", model, [n, seed], lambda: _ov_self_z(model.bridge, vocab_sample(model, n, seed)))


def _ov_self_z(bridge, ids: torch.Tensor) -> torch.Tensor:
    resid = weights.effective_embedding(bridge, ids)
    w = weights.head_weights(bridge)
    w_u = bridge.W_U.detach()[:, ids].float() * weights.final_gain(bridge)[:, None]
    if weights.is_layernorm(bridge):
        w_u = w_u - w_u.mean(0, keepdim=True)
    out = []
    with torch.inference_mode():
        for layer in range(bridge.cfg.n_layers):
            x = bridge.blocks[layer].ln1(resid).float()
            v = torch.einsum("nm,hmd->hnd", x, w["W_V"][layer].float()) + w["b_V"][layer][:, None].float()
            o = torch.einsum("hnd,hdm->hnm", v, w["W_O"][layer].float())
            o = o * weights.post_attn_gain(bridge, layer)                 # Gemma's post-attention norm
            logits = o @ w_u                                                  # [head, n, n]
            diag = logits.diagonal(dim1=-2, dim2=-1)
            out.append((diag - logits.mean(-1)) / logits.std(-1).clamp(min=1e-12))
    return torch.stack(out).float()


def attention_example(model, d: ioi_prompts.IOIData, head: Head, prompt: int = 0) -> dict:
    """One clean prompt's attention pattern of one head, for the site's plot."""
    layer, h = head
    store = {}

    def keep(p, hook):
        store["p"] = p[0, h].detach().float().clone()
        return p

    mioi.run_hooks(model.bridge, d.clean[prompt: prompt + 1], [(f"blocks.{layer}.attn.hook_pattern", keep)])
    return {"tokens": d.strings(model.tokenizer, prompt), "pattern": [[round(float(x), 4) for x in row] for row in store["p"]],
            "head": fmt_head(layer, h)}


def copy_rise(b: Base, abl_io_copy: torch.Tensor) -> torch.Tensor:
    """[n, layer, head] per-prompt rise of each head's IO-copy term (attention to the IO times
    the DLA of what it reads there) when some heads are ablated; abl_io_copy: that term on one
    copy of the prompts under the ablation."""
    return abl_io_copy - b.clean.dla_src[..., 0]


def backup_pool(b: Base, ablated: Sequence[Head]) -> torch.Tensor:
    """[layer, head] bool: heads that can be backup name movers here, those whose clean IO-copy
    term is >= 0 (a negative name mover suppressing less is not one) and not ablated."""
    ok = b.io_copy >= 0
    for h in ablated:
        ok[h[0], h[1]] = False
    return ok


# ============================================================================ name movers


def _select_name_movers(run) -> tuple[Base, list[Head]]:
    sel = selection_base(run)
    return sel, name_movers(sel, int(run.params["name_movers"]))


@claim("name-mover-scoring")
def test_name_movers(run):
    model, p = run.model, run.params
    sel, nms = _select_name_movers(run)
    nnm = negative_name_movers(sel, 1)
    cands = s_inhibition_candidates(sel, nms, int(p["s_inhibition"]))
    rise_sel = copy_rise(sel, ablated_at_end(model, run.selection_data, sel, [nms]).dla_src[..., 0]).mean(0)
    pool = backup_pool(sel, nms)
    backups = top_by(rise_sel, int(p["backup_candidates"]), allowed=lambda h: bool(pool[h]))
    run.select(nms, groups={"negative name mover": nnm, "S-inhibition candidates": cands, "backup candidates": backups},
               selection_io_copy_share=float(sel.io_copy[nms[0]]) / sel.ld)
    # Heads within one layer of each name mover: a layer of SmolLM2 or Gemma-3 leaves only 3-8
    # other heads (a few dozen distinct sets), and the name movers' layer holds further heads
    # with smaller IO-copy terms, so a same-layer null is a handful of near-name-mover sets.
    sets = null_sets(run, nms, int(p["null_sets"]), exclude=nnm, match="band")
    z = ov_self_z(model, p["vocab_n"], p["vocab_seed"])
    for data in run.variants():
        b = held_out_base(run)
        att = b.clean.attn                                                 # [n, layer, head, 3]
        run.measure(nm_attention_io=per_prompt_mean(att[..., 0], nms),
                    nm_io_minus_s=per_prompt_mean(att[..., 0] - att[..., 1] - att[..., 2], nms),
                    nm_dla_share=stats.bootstrap_ratio(per_prompt_sum(b.clean.dla, nms), b.clean.logit_diff),
                    nm_ov_copy_z=torch.stack([z[h] for h in nms]).mean(0),
                    nm_depth=depth(nms, model.n_layers))
        run.null("matched_attention", stats.set_means(b.attn[..., 0], sets))
        run.null("matched_dla", stats.set_sums(b.dla, sets) / b.ld)
        run.null("matched_ov", stats.set_means(z.mean(-1), sets))
        if run.is_primary:
            run.artifact(scores=(b.io_copy / b.ld).tolist(),
                         score_name="IO-copy direct logit attribution (share of logit(IO) - logit(S)), held-out prompts",
                         top_heads=heads_str(nms), attention_example=attention_example(model, b.data, nms[0]),
                         circuit=ioi_circuit(run, data, b, nms, nnm, cands, backups))
    run.conclude()


def ioi_circuit(run, data: dict, b: Base, nms, nnm, cands, backups) -> dict[str, list[str]]:
    """The IOI circuit's classes as found on this model (GPT-2's class names, so the site can set
    it beside catalogue/circuits.yaml), from the heads frozen on the selection prompts and judged
    on the primary held-out prompts: name movers and the negative name mover as selected;
    S-inhibition: the selected candidates (END -> S2 attention) whose own path patching into the
    name movers' queries lowers the logit difference by at least `sinh_min_effect` of it; backup
    name movers: the selected candidates (largest rise of the IO-copy term when the name movers
    are ablated at END, among heads that did not push the IO down) whose rise reaches
    `backup_min_rise` of the logit difference here. Upstream classes (not claims): heads with at
    least `upstream_min_attention` of their attention on their pattern (S2 -> S1 duplicate token,
    S2 -> S1+1 induction, S1+1 -> S1 previous token) before the S-inhibition candidates, at most
    3 each."""
    model, p = run.model, run.params
    patched = mioi.query_path_patch(model.bridge, b.data, b.clean.z_all, b.src_z, [[h] for h in cands], nms)
    lds = patched.by_copy("logit_diff", b.data.n).mean(1)
    sinh = [h for h, ld in zip(cands, lds.tolist()) if 1.0 - ld / b.ld >= float(p["sinh_min_effect"])]
    rise = copy_rise(b, ablated_at_end(model, data, b, [nms]).dla_src[..., 0]).mean(0) / b.ld
    pool = backup_pool(b, nms)
    backup = [h for h in backups if bool(pool[h]) and float(rise[h]) >= float(p["backup_min_rise"])]
    up = b.clean.upstream.mean(0)
    first = min(layer for layer, _ in cands)
    lim = float(p["upstream_min_attention"])

    def upstream(i: int) -> list[str]:
        score = up[..., i]
        return heads_str([h for h in top_by(score, 3, allowed=lambda h: h[0] < first) if float(score[h]) >= lim])

    return {"name mover": heads_str(nms), "backup name mover": heads_str(backup),
            "negative name mover": heads_str(nnm), "S-inhibition": heads_str(sinh),
            "induction": upstream(1), "duplicate token": upstream(0), "previous token": upstream(2)}


@claim("name-mover-path-patching")
def test_name_movers_direct_path(run):
    model, p = run.model, run.params
    sel, nms = _select_name_movers(run)
    nnm = negative_name_movers(sel, 1)
    run.select(nms, groups={"negative name mover": nnm})
    sets = null_sets(run, nms, int(p["null_sets"]), exclude=nnm, match="band").tolist()
    for _ in run.variants():
        b = held_out_base(run)
        src = [z[:, b.data.end].float() for z in b.src_z]
        ld = b.clean.logit_diff
        patched = mioi.logits_path_patch(model.bridge, b.clean, src, [nms] + sets, b.data)   # [1 + sets, n]
        run.measure(nm_path_effect_share=stats.bootstrap_ratio(ld - patched[0], ld))
        run.null("matched_sets", (ld.mean() - patched[1:].mean(1)) / ld.mean())
        if run.is_primary:
            each = mioi.logits_path_patch(model.bridge, b.clean, src, [[h] for h in nms], b.data).mean(1)
            run.artifact(top_heads=heads_str(nms),
                         effects={"labels": heads_str(nms) + ["name movers together"],
                                  "values": [1.0 - float(x) / b.ld for x in each] + [1.0 - float(patched[0].mean()) / b.ld],
                                  "ylabel": "share of logit(IO) - logit(S) removed by path patching into the logits"})
    run.conclude()


# ============================================================================ self-repair, backup name movers


@claim("backup-name-mover-self-repair")
def test_self_repair(run):
    model, p = run.model, run.params
    sel, nms = _select_name_movers(run)
    rise_sel = copy_rise(sel, ablated_at_end(model, run.selection_data, sel, [nms]).dla_src[..., 0]).mean(0)
    pool = backup_pool(sel, nms)
    backups = top_by(rise_sel, int(p["backup_name_movers"]), allowed=lambda h: bool(pool[h]))
    run.select(backups, groups={"name movers": nms}, selection_backup_copy_rise=float(rise_sel[backups[0]]) / sel.ld)
    sets = null_sets(run, nms, int(p["null_sets"]), exclude=backups).tolist()
    for data in run.variants():
        b = held_out_base(run)
        n = b.data.n
        abl = ablated_at_end(model, data, b, [nms] + sets)
        ld_abl = abl.by_copy("logit_diff", n)                               # [1 + sets, n]
        dla_abl = abl.by_copy("dla", n)                                     # [1 + sets, n, layer, head]
        ld = b.clean.logit_diff
        # What the ablation takes away directly: the name movers' frozen-scale DLA, clean minus ablated.
        direct = per_prompt_sum(b.clean.dla, nms) - per_prompt_sum(dla_abl[0], nms)
        total = ld - ld_abl[0]

        def rise_share(i: int, heads) -> float:
            r = dla_abl[i].mean(0) - b.dla
            for h in heads:
                r[h[0], h[1]] = 0.0
            return float(r.clamp(min=0).sum()) / b.ld

        rise = dla_abl[0].mean(0) - b.dla
        for h in nms:
            rise[h] = 0.0
        pos = rise.clamp(min=0)
        crise = copy_rise(b, abl.by_copy("dla_src", n)[0, ..., 0])          # [n, layer, head]
        run.measure(direct_effect_share=stats.bootstrap_ratio(direct, ld), total_effect_share=stats.bootstrap_ratio(total, ld),
                    compensation=minus(stats.bootstrap_ratio(total, direct)),
                    rise_share=rise_share(0, nms),
                    rise_from_negative_heads=float(pos[b.dla < 0].sum() / pos.sum().clamp(min=1e-9)),
                    backup_copy_rise=stats.bootstrap_ratio(per_prompt_mean(crise, backups), ld))
        run.null("matched_sets", [rise_share(i + 1, s) for i, s in enumerate(sets)])
        run.null("all_heads", (crise.mean(0) / b.ld)[backup_pool(b, nms)])
        if run.is_primary:
            top = top_by(rise, 5)
            run.artifact(scores=(rise / b.ld).tolist(),
                         score_name="rise of direct logit attribution when the name movers are mean-ablated at END (share of logit difference)",
                         top_heads=heads_str(top), ablated_heads=heads_str(nms), backup_heads=heads_str(backups),
                         null_example_heads=heads_str(sets[0]),
                         effects={"labels": [f"{h} ({'negative' if float(b.dla[parse_head(h)]) < 0 else 'positive'} before)" for h in heads_str(top)],
                                  "values": [float(rise[h]) / b.ld for h in top],
                                  "ylabel": "rise of direct effect after ablating the name movers (share of logit difference)"})
    run.conclude()


# ============================================================================ negative name movers, copy suppression


@claim("negative-name-mover-scoring")
def test_negative_name_movers(run):
    model, p = run.model, run.params
    sel = selection_base(run)
    nnm = negative_name_movers(sel, 1)
    nms = name_movers(sel, int(p["name_movers"]))
    run.select(nnm, groups={"name movers": nms}, selection_io_copy_share=float(sel.io_copy[nnm[0]]) / sel.ld)
    # The null for its attention: heads within one layer of it other than the name movers
    # (frozen on the same selection prompts), which attend to the IO by definition.
    sets = null_sets(run, nnm, int(p["null_sets"]), exclude=nms, match="band")
    z = ov_self_z(model, p["vocab_n"], p["vocab_seed"])
    (h,) = nnm
    for _ in run.variants():
        b = held_out_base(run)
        ld = b.clean.logit_diff
        run.measure(nnm_attention_io=b.clean.attn[:, h[0], h[1], 0],
                    nnm_io_copy_share=stats.bootstrap_ratio(b.clean.dla_src[:, h[0], h[1], 0], ld),
                    nnm_dla_share=stats.bootstrap_ratio(b.clean.dla[:, h[0], h[1]], ld),
                    nnm_ov_copy_z=z[h], nnm_depth=depth(nnm, model.n_layers))
        run.null("matched_attention", stats.set_means(b.attn[..., 0], sets))
        run.null("all_heads_io_copy", (b.io_copy / b.ld).flatten())
        run.null("all_heads_dla", (b.dla / b.ld).flatten())
        if run.is_primary:
            run.artifact(scores=(-b.io_copy / b.ld).tolist(),
                         score_name="negative IO-copy direct logit attribution (share of logit difference removed), held-out prompts",
                         top_heads=heads_str(nnm), attention_example=attention_example(model, b.data, h))
    run.conclude()


@claim("copy-suppression-ov")
def test_copy_suppression_ov(run):
    model, p = run.model, run.params
    sel, nms = _select_name_movers(run)
    nnm = negative_name_movers(sel, 1)
    run.select(nnm, groups={"name movers": nms}, selection_io_copy_share=float(sel.io_copy[nnm[0]]) / sel.ld)
    (h,) = nnm
    for data in run.variants():
        held_out_base(run)
        z = ov_self_z(model, data["vocab_n"], data["vocab_seed"])           # [layer, head, token]
        zm = z.mean(-1)
        run.measure(nnm_ov_self_z=z[h], nnm_ov_rank=int((zm < zm[h]).sum()) + 1,
                    name_mover_ov_self_z=torch.stack([zm[x] for x in nms]).mean())
        run.null("all_heads", zm.flatten())
        if run.is_primary:
            run.artifact(scores=zm.tolist(), score_name="OV own-token logit z-score (negative = suppresses the attended token)",
                         top_heads=heads_str(top_by(-zm, 5)), negative_name_mover=fmt_head(*h),
                         effects={"labels": [f"{fmt_head(*h)} (negative name mover)"] + [f"{x} (name mover)" for x in heads_str(nms)],
                                  "values": [float(zm[h])] + [float(zm[x]) for x in nms],
                                  "ylabel": "OV own-token logit z-score"})
    run.conclude()


@claim("copy-suppression-prediction")
def test_copy_suppression_follows_the_prediction(run):
    model, p = run.model, run.params
    sel, nms = _select_name_movers(run)
    nnm = negative_name_movers(sel, 1)
    run.select(nnm, groups={"name movers": nms})
    (h,) = nnm
    sets = null_sets(run, nms, int(p["null_sets"]), exclude=nnm).tolist()
    for data in run.variants():
        b = held_out_base(run)
        n = b.data.n
        before = b.clean.attn[:, h[0], h[1], 0]
        after = ablated_at_end(model, data, b, [nms] + sets).by_copy("attn", n)[:, :, h[0], h[1], 0]   # [1 + sets, n]
        run.measure(nnm_attention_io=before, attention_ratio=stats.bootstrap_ratio(after[0], before))
        run.null("matched_sets", after[1:].mean(1) / before.mean())
        if run.is_primary:
            run.artifact(negative_name_mover=fmt_head(*h), ablated_heads=heads_str(nms), null_example_heads=heads_str(sets[0]),
                         effects={"labels": ["clean", "name movers ablated at END", "median of the matched sets ablated"],
                                  "values": [float(before.mean()), float(after[0].mean()), float(after[1:].mean(1).median())],
                                  "ylabel": f"attention of {fmt_head(*h)} from END to the IO"})
    run.conclude()


# ============================================================================ S-inhibition


def _nm_preference(attn: torch.Tensor, nms: Sequence[Head]) -> torch.Tensor:
    """[n] name movers' attention to the IO minus to both S mentions, averaged over the heads."""
    return per_prompt_mean(attn[..., 0] - attn[..., 1] - attn[..., 2], nms)


@claim("inhibition-path-patching")
def test_s_inhibition(run):
    model, p = run.model, run.params
    sel, nms = _select_name_movers(run)
    k = int(p["s_inhibition"])
    sinh = s_inhibition_candidates(sel, nms, k)
    first = min(layer for layer, _ in nms)
    ctrl = scoring.random_heads(model.n_layers, model.n_heads, k, int(p["control_seed"]), exclude=sinh,
                                where=lambda layer, _: layer < first)
    run.select(sinh, groups={"name movers": nms, "control": ctrl},
               selection_attention_s2=float(torch.stack([sel.attn[h][2] for h in sinh]).mean()))
    sets = null_sets(run, sinh, int(p["null_sets"])).tolist()
    for _ in run.variants():
        b = held_out_base(run)
        n = b.data.n
        patched = mioi.query_path_patch(model.bridge, b.data, b.clean.z_all, b.src_z, [sinh, ctrl] + sets, nms)
        attn = patched.by_copy("attn", n)                                   # [2 + sets, n, layer, head, 3]
        lds = patched.by_copy("logit_diff", n)
        copy = torch.stack([per_prompt_sum(c, nms) for c in patched.by_copy("dla_src", n)[..., 0]])   # [2 + sets, n]
        copy0, ld = per_prompt_sum(b.clean.dla_src[..., 0], nms), b.clean.logit_diff
        run.measure(sinh_attention_s2=per_prompt_mean(b.clean.attn[..., 2], sinh),
                    nm_preference_clean=_nm_preference(b.clean.attn, nms),
                    nm_preference_patched=_nm_preference(attn[0], nms),
                    control_nm_preference_patched=float(_nm_preference(attn[1], nms).mean()),
                    nm_io_copy_drop=stats.bootstrap_ratio(copy0 - copy[0], copy0),
                    control_nm_io_copy_drop=1.0 - float(copy[1].mean() / copy0.mean()),
                    ld_drop_share=stats.bootstrap_ratio(ld - lds[0], ld),
                    control_ld_drop_share=1.0 - float(lds[1].mean() / ld.mean()),
                    sinh_depth=depth(sinh, model.n_layers))
        run.null("matched_preference", torch.stack([_nm_preference(a, nms).mean() for a in attn[2:]]))
        run.null("matched_copy_drop", 1.0 - copy[2:].mean(1) / copy0.mean())
        run.null("matched_ld_drop", 1.0 - lds[2:].mean(1) / ld.mean())
        if run.is_primary:
            each = mioi.query_path_patch(model.bridge, b.data, b.clean.z_all, b.src_z, [[h] for h in sinh], nms)
            each_ld = each.by_copy("logit_diff", n).mean(1)
            run.artifact(scores=b.attn[..., 2].tolist(), score_name="attention from END to the repeated subject S2, held-out prompts",
                         top_heads=heads_str(sinh), receivers=heads_str(nms), control_heads=heads_str(ctrl),
                         null_example_heads=heads_str(sets[0]),
                         attention_example=attention_example(model, b.data, sinh[0]),
                         effects={"labels": heads_str(sinh) + ["together", "control heads together"],
                                  "values": [1.0 - float(x) / b.ld for x in each_ld]
                                  + [1.0 - float(lds[0].mean()) / b.ld, 1.0 - float(lds[1].mean()) / b.ld],
                                  "ylabel": "share of logit difference lost, path patching into the name movers' queries"})
    run.conclude()


# ============================================================================ GPT-2 small replication


def published_score(model, data: dict, p: dict) -> tuple[torch.Tensor, torch.Tensor, str]:
    """([layer, head] mean score, [n, layer, head] numerator per prompt or token, name) of the
    score the published heads should top. dla / negative-dla: the head's (minus) DLA on
    logit(IO) - logit(S) as a share of it (per prompt: its DLA, to be divided by the logit
    difference); ov-suppression: minus the OV own-token z-score over a vocabulary sample (per
    token)."""
    kind = p["score"]
    if kind in ("dla", "negative-dla"):
        b = base(model, data)
        sign = 1.0 if kind == "dla" else -1.0
        name = "direct logit attribution (share of logit difference)"
        return sign * b.dla / b.ld, sign * b.clean.dla, name if kind == "dla" else "negative " + name
    if kind == "ov-suppression":
        z = -ov_self_z(model, data["vocab_n"], data["vocab_seed"])
        return z.mean(-1), z.permute(2, 0, 1), "minus the OV own-token logit z-score"
    raise ValueError(f"unknown published-head score {kind!r}")


def _replicate(run) -> None:
    """Published heads (selection: published): their worst rank among all heads, and the weakest
    one's score (per prompt, bootstrapped) against the null of the weakest score of as many
    heads drawn at random from the others (999 sets)."""
    p = run.params
    for data in run.variants():
        score, per, name = published_score(run.model, data, p)
        n_layers, n_heads = score.shape
        heads = [parse_head(h) for h in p["published"]]
        for layer, head in heads:
            if layer >= n_layers or head >= n_heads:
                raise ValueError(f"published head {layer}.{head} does not exist in a {n_layers}x{n_heads} model")
        ranks = [int((score > score[h]).sum()) + 1 for h in heads]
        weakest = min(heads, key=lambda h: float(score[h]))
        values = per[:, weakest[0], weakest[1]]
        if p["score"] == "ov-suppression":
            run.measure(worst_published_rank=max(ranks), weakest_published_score=values)
        else:
            run.measure(worst_published_rank=max(ranks),
                        weakest_published_score=stats.bootstrap_ratio(values, base(run.model, data).clean.logit_diff))
        sets = stats.matched_head_sets(heads, n_layers, n_heads, n_sets=int(p.get("null_sets", stats.N_NULL)),
                                       seed=int(p.get("null_seed", 0)), exclude=heads, match="any")
        run.null("matched_sets", score[sets[..., 0], sets[..., 1]].min(1).values)
        if run.is_primary:
            run.artifact(scores=score.tolist(), score_name=name, published_heads=list(p["published"]),
                         published_ranks=ranks, top_heads=heads_str(top_by(score, 10)))
    run.conclude()


@claim("name-mover-gpt2-published")
def test_gpt2_name_movers(run):
    _replicate(run)


@claim("negative-name-mover-gpt2-published")
def test_gpt2_negative_name_movers(run):
    _replicate(run)


@claim("copy-suppression-gpt2-published")
def test_gpt2_copy_suppression(run):
    _replicate(run)
