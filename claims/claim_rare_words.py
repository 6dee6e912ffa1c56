"""Rare-words heads (Voita et al. 2019): a head that points, from most positions, to the least
frequent token of the text. Voita et al. find it in the first encoder layer of translation
models; here it is looked for in decoder-only models.

Rarity is fixed by construction (headatlas.prompts.patterns.rare_word_prompts): running text
into which " The word was photosynthesis." and " The word was house." are inserted in a seeded
order. From every position after both, a head's attention to the rare word (its most attended
token, since a long word can be several tokens) is compared with its attention to the everyday
word in the same frame. The head with the largest preference on selection text (one corpus, one
half of each word list) is frozen and judged on held-out text (another corpus, the other words,
three seeds), against every other head of the model.
"""

import torch
from _attn import forward_reduce

from headatlas.claims import claim
from headatlas.methods import stats
from headatlas.methods.scoring import fmt_head, relative_depth
from headatlas.prompts import patterns


def word_attention(model, d: dict) -> dict[str, torch.Tensor]:
    """Per prompt and head, averaged over the positions after both words: attention to the rare
    word's most attended token and to the common word [batch, layer, head]."""
    r = patterns.rare_word_prompts(model.tokenizer, n_prompts=int(d["n_prompts"]), n_tokens=int(d["n_tokens"]),
                                   corpus=str(d["corpus"]), half=str(d["half"]), seed=int(d["seed"]))
    q = r.queries.float()[:, None, :]                                                  # [batch, 1, q]
    n_q = q.sum(-1)

    def on(mask, reduce):
        m = mask.float()[:, None, None, :]                                             # [batch, 1, 1, k]
        return lambda p: (reduce(p * m) * q).sum(-1) / n_q                              # [batch, head]
    out = forward_reduce(model.bridge, r.tokens, {"rare": on(r.rare, lambda x: x.amax(-1)),
                                            "common": on(r.common, lambda x: x.sum(-1))})
    return {k: out[k].permute(1, 0, 2) for k in ("rare", "common")}


@claim("rare-words-attention")
def test_rare_words_head(run):
    model = run.model

    # Select: the head that prefers the rare word most on selection text.
    s = word_attention(model, run.selection_data)
    score = (s["rare"] - s["common"]).mean(0)                                          # [layer, head]
    flat = int(score.flatten().argmax())
    layer, head = divmod(flat, model.n_heads)
    run.select([(layer, head)], selection_rare_preference=score[layer, head])

    # Measure on held-out text.
    for data in run.variants():
        m = word_attention(model, data)
        pref = m["rare"] - m["common"]                                                 # [batch, layer, head]
        run.measure(rare_preference=pref[:, layer, head], rare_attention=m["rare"][:, layer, head],
                    common_attention=m["common"][:, layer, head],
                    top_heads_depth=relative_depth(layer, model.n_layers))
        every = pref.mean(0).flatten()
        run.null("all_other_heads", torch.cat([every[:flat], every[flat + 1:]]))
        if run.is_primary:
            run.artifact(scores=pref.mean(0).tolist(),
                         score_name="attention to the rare word minus to the common word, from later positions (held-out)",
                         top_heads=[fmt_head(layer, head)],
                         median_head_rare_preference=float(stats.percentile(every, 50)))

    # Conclude.
    run.conclude()
