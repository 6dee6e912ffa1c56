"""Claims on toy models trained from scratch (simplified-model training): iteration heads
(running parity), associative memories (global bigrams), active-dormant heads (Bigram-Backcopy)
and the induction phase change. Each compares the trained model with its untrained twin."""

from __future__ import annotations

import torch
from _toy import batch, best_head, depth, trained, twin

from headatlas.claims import claim
from headatlas.methods import stats, toymodels


@claim("iteration-toy-parity")
def test_iteration_head_reads_input_t_at_step_t(run):
    model, spec = run.model.bridge, trained(run).spec
    L, H = model.cfg.n_layers, model.cfg.n_heads
    base_sel = toymodels.losses(model, batch(run, run.selection_data))
    acc = float(base_sel["accuracy"].mean())
    if acc < float(run.params["min_accuracy"]):
        run.not_applicable(f"the trained model writes {acc:.2f} of the parity steps correctly; the claim "
                           f"needs at least {run.params['min_accuracy']}")
    sel = toymodels.role_scores(spec, model, batch(run, run.selection_data))["iteration"]
    head = best_head(sel)
    run.select([head], iteration_score=sel[head])
    untrained = twin(run)
    others = [(layer, h) for layer in range(L) for h in range(H) if (layer, h) != head]
    for data_spec in run.variants():
        data = batch(run, data_spec)
        per = toymodels.per_sequence_scores(spec, model, data)["iteration"]          # [b, L, H]
        per_twin = toymodels.per_sequence_scores(spec, untrained, data)["iteration"]
        base, cut = toymodels.losses(model, data), toymodels.losses(model, data, [head])
        tbase, tcut = toymodels.losses(untrained, data), toymodels.losses(untrained, data, [head])
        run.measure(iteration_score=per[:, head[0], head[1]], control_iteration_score=per_twin[:, head[0], head[1]],
                    accuracy=base["accuracy"], accuracy_drop=base["accuracy"] - cut["accuracy"],
                    control_accuracy_drop=tbase["accuracy"] - tcut["accuracy"], head_depth=depth(head[0], L))
        run.null("all_heads", per.mean(0).flatten())
        drops = [float((base["accuracy"] - toymodels.losses(model, data, [o])["accuracy"]).mean()) for o in others]
        run.null("other_heads_ablated", drops)
        if run.is_primary:
            run.artifact(iteration_head=f"{head[0]}.{head[1]}",
                         scores=[[round(float(x), 4) for x in row] for row in per.mean(0)])
    run.conclude()


@claim("associative-memory-toy-bigram")
def test_ov_memory_recalls_global_bigrams(run):
    model, spec = run.model.bridge, trained(run).spec
    succ = toymodels.batch(spec, 1, 0)["successor"]
    triggers = set(spec.task_params["triggers"])

    def half(data: dict) -> torch.Tensor:
        parity = {"even": 0, "odd": 1}[data["tokens"]]
        return torch.tensor([t for t in range(model.cfg.d_vocab) if t % 2 == parity and t not in triggers])

    def recall(m, tokens: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return (toymodels.layer_memory_readout(m, tokens) == targets[tokens]).float()      # [L, n]

    selection = half(run.selection_data)
    sel = recall(model, selection, succ).mean(-1)
    layer = int(sel.argmax())
    run.select([(layer, h) for h in range(model.cfg.n_heads)], memory_recall=sel[layer])
    untrained = twin(run)
    gen = torch.Generator().manual_seed(int(run.params["null_seed"]))
    for data_spec in run.variants():
        tokens = half(data_spec)
        run.measure(memory_recall=recall(model, tokens, succ)[layer],
                    control_memory_recall=recall(untrained, tokens, succ)[layer], chance=1.0 / model.cfg.d_vocab,
                    head_recall_max=float(toymodels.memory_recall(model, succ, tokens)[layer].mean(-1).max()))
        # does the memory return the trained successors, or would any map of the vocabulary do?
        top = toymodels.layer_memory_readout(model, tokens)[layer]
        permuted = [float((top == succ[torch.randperm(len(succ), generator=gen)][tokens]).float().mean())
                    for _ in range(int(run.params["null_maps"]))]
        run.null("permuted_successors", permuted)
        run.artifact(memory_layer=layer, n_tokens=len(tokens),
                     head_recall=[[round(float(x), 4) for x in row]
                                  for row in toymodels.memory_recall(model, succ, tokens).mean(-1)])
    run.conclude()


@claim("active-dormant-toy-backcopy")
def test_head_sinks_without_trigger_and_copies_with_it(run):
    model, spec = run.model.bridge, trained(run).spec
    L, H = model.cfg.n_layers, model.cfg.n_heads
    sel = toymodels.role_scores(spec, model, batch(run, run.selection_data))["active_dormant"]
    head = best_head(sel)
    run.select([head], active_dormant=sel[head])
    untrained = twin(run)
    l, h = head
    for data_spec in run.variants():
        data = batch(run, data_spec)
        trig, rest = data["trigger"].clone(), ~data["trigger"]
        rest[:, 0] = False

        def measures(m):
            _, cache = m(data["tokens"])
            per = toymodels.per_sequence_scores(spec, m, data, cache)
            norm = cache["head_out"][l][:, :, h].norm(dim=-1)                            # [b, s]
            v = cache["v"][l][:, :, h].norm(dim=-1)
            on = (norm * trig).sum(1) / trig.sum(1).clamp(min=1)
            off = (norm * rest).sum(1) / rest.sum(1).clamp(min=1)
            return per, on, off, v[:, 0], v[:, 1:].mean(1)

        per, on, off, v_bos, v_rest = measures(model)
        tper, ton, toff, tv_bos, tv_rest = measures(untrained)
        keep = trig.any(1)   # sequences with at least one trigger
        run.measure(trigger_attention=per["active"][keep, l, h], sink_attention=per["sink"][:, l, h],
                    control_trigger_attention=tper["active"][keep, l, h], control_sink_attention=tper["sink"][:, l, h],
                    output_norm_ratio=stats.bootstrap_ratio(on[keep], off[keep]),
                    control_output_norm_ratio=stats.bootstrap_ratio(ton[keep], toff[keep]),
                    sink_value_ratio=stats.bootstrap_ratio(v_bos, v_rest),
                    control_sink_value_ratio=stats.bootstrap_ratio(tv_bos, tv_rest))
        run.null("all_heads", per["active_dormant"].mean(0).flatten())
        run.measure(active_dormant=per["active_dormant"][keep, l, h],
                    control_active_dormant=tper["active_dormant"][keep, l, h])
        if run.is_primary:
            run.artifact(active_dormant_head=f"{l}.{h}",
                         trigger_attention=[[round(float(x), 4) for x in row] for row in per["active"].mean(0)],
                         sink_attention=[[round(float(x), 4) for x in row] for row in per["sink"].mean(0)])
    run.conclude()


@claim("induction-toy-phase-change")
def test_induction_head_appears_with_the_loss_drop(run):
    model, tr = run.model.bridge, trained(run)
    spec = tr.spec
    L = model.cfg.n_layers
    sel = toymodels.role_scores(spec, model, batch(run, run.selection_data))["induction"]
    head = best_head(sel)
    run.select([head], induction_score=sel[head])
    untrained = twin(run)
    ckpts = tr.checkpoints()
    steps = sorted(ckpts)
    snapshots = []
    for s in steps:
        m = toymodels.build(spec)
        m.load_state_dict(ckpts[s])
        snapshots.append(m.eval())
    w = int(run.params["window_evals"])
    for data_spec in run.variants():
        data = batch(run, data_spec)
        loss, score = [], []
        for m in snapshots:
            res = toymodels.losses(m, data)
            loss.append(res["repeat_loss"])
            score.append(toymodels.per_sequence_scores(spec, m, data, res["cache"])["induction"])
        loss = torch.stack(loss)                                   # [checkpoints, b]
        score = torch.stack(score)                                 # [checkpoints, b, L, H]
        curve = score[:, :, head[0], head[1]].mean(1)
        formed = next((i for i, v in enumerate(curve.tolist()) if v > toymodels.FORM_THRESHOLD), None)
        if formed is None:
            run.measure(final_induction_score=score[-1, :, head[0], head[1]], formation_step=float(steps[-1] + spec.eval_every),
                        drop_near_formation=0.0, control_final_induction_score=0.0,
                        head_layer=float(head[0]))
            run.null("all_heads", score[-1].mean(0).flatten())
            run.null("window_centres", torch.zeros(19))
            continue
        total = (loss[0] - loss[-1]).clamp(min=1e-6)

        def drop_around(c: int) -> torch.Tensor:
            lo, hi = max(c - w, 0), min(c + w, len(steps) - 1)
            return (loss[lo] - loss[hi]) / total                   # per-sequence share of the whole drop

        per_twin = toymodels.per_sequence_scores(spec, untrained, data)["induction"]
        run.measure(final_induction_score=score[-1, :, head[0], head[1]],
                    control_final_induction_score=per_twin[:, head[0], head[1]],
                    formation_step=float(steps[formed]), drop_near_formation=drop_around(formed),
                    head_layer=float(head[0]))
        run.null("all_heads", score[-1].mean(0).flatten())
        # windows elsewhere in training: those overlapping the formation window share its drop, so they are left out
        run.null("window_centres", [float(drop_around(c).mean()) for c in range(w, len(steps) - w) if abs(c - formed) >= 2 * w])
        if run.is_primary:
            run.artifact(induction_head=f"{head[0]}.{head[1]}", steps=steps,
                         repeat_loss=[round(float(x), 4) for x in loss.mean(1)],
                         induction_score=[round(float(x), 4) for x in curve])
    run.conclude()
