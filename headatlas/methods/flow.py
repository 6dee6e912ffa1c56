"""Information-flow routes (Ferrando & Voita 2024): which token-to-token edges through which heads
carry the information that reaches a prediction, from one forward pass, no patching.

At layer l and query position i, the attention block adds to the residual x_i the vectors
c_{h,j} = A_h[i, j] * v_{h,j} W_O^h (head h reading token j). Each contribution's importance is
its proximity to the block's output y_i = x_i + sum c + b_O:
    prox(c, y) = max(0, ||y||_1 - ||y - c||_1),
normalized over all contributions at (l, i), the residual x_i included (Ferrando & Voita's
ALTI-style rule). Edges with importance above a threshold are kept, and the graph is grown top-down from the
prediction node so only routes that reach it remain.

Nodes are (layer, position): the residual stream entering block `layer` (layer = n_layers is the
final residual). MLPs act on one position and move no information between tokens, so they are
folded into the residual edge (i -> i) rather than drawn.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from headatlas.methods.weights import expand_kv, head_weights, kv_group


@dataclass
class FlowGraph:
    tokens: list[int]
    target: tuple[int, int]                   # (n_layers, position) the prediction node
    edges: list[dict]                         # {"src": (l, j), "dst": (l + 1, i), "head": h | "residual", "weight": w}
    importance: torch.Tensor                  # [layer, q, 1 + head * key]: col 0 residual, then (h, j) flattened
    threshold: float
    nodes: list[tuple[int, int]] = field(default_factory=list)

    def head_edges(self) -> list[dict]:
        return [e for e in self.edges if e["head"] != "residual"]


def contribution_importance(resid_pre: torch.Tensor, pattern: torch.Tensor, v: torch.Tensor, w_o: torch.Tensor,
                            b_o: torch.Tensor) -> torch.Tensor:
    """One layer, one prompt. resid_pre [s, d_model], pattern [h, s, s], v [s, h, d_head],
    w_o [h, d_head, d_model], b_o [d_model] -> importances [s(query), 1 + h * s(key)] (rows sum
    to 1; column 0 is the residual x_i, column 1 + h*s + j is head h reading key j)."""
    s = resid_pre.shape[0]
    vo = torch.einsum("jhd,hdm->hjm", v, w_o)                             # [h, j, d_model]
    contrib = pattern[..., None] * vo[:, None]                            # [h, i, j, d_model]
    y = resid_pre + contrib.sum((0, 2)) + b_o                             # [i, d_model]
    y_norm = y.abs().sum(-1)                                              # [i]
    prox_heads = (y_norm[None, :, None] - (y[None, :, None] - contrib).abs().sum(-1)).clamp(min=0)   # [h, i, j]
    prox_res = (y_norm - (y - resid_pre).abs().sum(-1)).clamp(min=0)      # [i]
    prox = torch.cat([prox_res[:, None], prox_heads.permute(1, 0, 2).reshape(s, -1)], dim=1)
    return prox / prox.sum(-1, keepdim=True).clamp(min=1e-12)


def information_flow(bridge, tokens: torch.Tensor, *, position: int = -1, threshold: float = 0.04,
                     fwd_hooks=()) -> FlowGraph:
    """The information-flow graph of one prompt ([pos] or [1, pos]) for the prediction at `position`."""
    tokens = tokens.reshape(1, -1)
    n_layers, s = bridge.cfg.n_layers, tokens.shape[1]
    names = set()
    for layer in range(n_layers):
        names |= {f"blocks.{layer}.hook_resid_pre", f"blocks.{layer}.attn.hook_pattern", f"blocks.{layer}.attn.hook_v"}
    store: dict[str, torch.Tensor] = {}

    def keep(x, hook, key=None):
        store[key] = x.detach()[0].float()
        return x

    hooks = list(fwd_hooks) + [(n, (lambda x, hook, n=n: keep(x, hook, n))) for n in sorted(names)]
    with torch.inference_mode():
        bridge.run_with_hooks(tokens, fwd_hooks=hooks, return_type=None)
    w = head_weights(bridge)
    group = kv_group(bridge)
    imps = []
    for layer in range(n_layers):
        v = expand_kv(store[f"blocks.{layer}.attn.hook_v"], group, 1)   # [s, h, d_head]
        imps.append(contribution_importance(store[f"blocks.{layer}.hook_resid_pre"],
                                            store[f"blocks.{layer}.attn.hook_pattern"], v,
                                            w["W_O"][layer], w["b_O"][layer]))
    importance = torch.stack(imps)                                        # [layer, q, 1 + h*k]
    n_heads = bridge.cfg.n_heads
    target = (n_layers, position % s)
    keep_nodes = {target}
    edges = []
    for layer in reversed(range(n_layers)):
        for (l, i) in sorted(n for n in keep_nodes if n[0] == layer + 1):
            row = importance[layer, i]
            if row[0] > threshold:
                edges.append({"src": (layer, i), "dst": (layer + 1, i), "head": "residual", "weight": float(row[0])})
            heads_part = row[1:].view(n_heads, s)
            for h, j in (heads_part > threshold).nonzero().tolist():
                edges.append({"src": (layer, j), "dst": (layer + 1, i), "head": h, "weight": float(heads_part[h, j])})
        keep_nodes |= {e["src"] for e in edges if e["src"][0] == layer}
    return FlowGraph(tokens[0].tolist(), target, edges, importance, threshold, sorted(keep_nodes))


def to_networkx(graph: FlowGraph):
    """The graph as a networkx MultiDiGraph (networkx must be installed)."""
    import networkx as nx

    g = nx.MultiDiGraph()
    g.add_nodes_from(graph.nodes)
    for e in graph.edges:
        g.add_edge(e["src"], e["dst"], head=e["head"], weight=e["weight"])
    return g
