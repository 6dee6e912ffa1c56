"""The multiple-choice data's clean pass, shared by the correct-letter, correct, amplification
and content-gatherer claims: one forward pass per (model, data) in a session, whichever claim asks
first (headatlas.prompts.patterns.mcqa_prompts)."""

import torch
from _attn import forward_reduce, head_direct_out, memo, unembed_rows

from headatlas.prompts import patterns


def margin(label_logits: torch.Tensor, answer: torch.Tensor) -> torch.Tensor:
    """logit(correct letter) - mean logit(other letters), per prompt."""
    rows = torch.arange(label_logits.shape[0])
    right = label_logits[rows, answer]
    return right - (label_logits.sum(-1) - right) / (label_logits.shape[-1] - 1)


def share_on_correct(att: torch.Tensor, answer: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention on the correct option [layer, batch, head] and its share of the attention paid to
    the four options."""
    pick = answer[None, :, None, None].expand(*att.shape[:3], 1)
    on = att.gather(-1, pick)[..., 0]
    return on, on / att.sum(-1).clamp(min=1e-6)


def prompt_options(d: dict, rotate: int = 0) -> dict:
    """mcqa_prompts' arguments from a claim's data spec (the category task and every object
    unless the spec names a task and a half)."""
    return {"n_prompts": int(d["n_prompts"]), "n_shots": int(d["n_shots"]), "template": str(d["template"]),
            "seed": int(d["seed"]), "shuffle_labels": bool(d.get("shuffle_labels", False)),
            "task": str(d.get("task", "category")), "half": str(d.get("half", "all")), "rotate": rotate}


def clean_pass(model, d: dict) -> dict:
    """The prompts (`q`) and one clean pass read at the answer position: attention to each
    option's label and word ([layer, batch, head, option]), every head's output (`z`), the final
    residual and norm scale, the label logits, the accuracy and the correct letter's margin."""

    def compute():
        q = patterns.mcqa_prompts(model.tokenizer, **prompt_options(d))
        rows = torch.arange(q.tokens.shape[0])

        def at(positions):
            return lambda pat: pat[rows, :, -1][rows[:, None], :, positions].transpose(1, 2)   # [batch, head, option]

        out = forward_reduce(model.bridge, q.tokens, {"labels": at(q.letter_pos), "words": at(q.word_pos)},
                             z_at=-1, final_at=-1)
        out["q"] = q
        out["label_logits"] = unembed_rows(model.bridge, out["final"])[:, q.label_ids]     # [batch, option]
        out["accuracy"] = float((out["label_logits"].argmax(-1) == q.answer).float().mean())
        out["margin"] = margin(out["label_logits"], q.answer)
        return out

    return memo([model.name, "mcqa-clean-pass", prompt_options(d)], compute)


def label_logit_parts(model, c: dict) -> torch.Tensor:
    """Each head's direct contribution to each option letter's logit at the answer position
    (final norm's scale frozen): [layer, batch, head, option]."""
    return head_direct_out(model.bridge, c["z"], c["scale"], c["post_scale"]) @ model.bridge.W_U.detach()[:, c["q"].label_ids]
