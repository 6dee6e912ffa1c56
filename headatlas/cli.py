"""The `headatlas` command: validate the catalogue, verify claims, scaffold entries, scan models."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from headatlas.catalogue import CatalogueError, load_catalogue

console = Console(stderr=True)
out = Console()


def _fail(message: str) -> int:
    console.print(f"[bold red]error:[/] {message}")
    return 1


def cmd_validate(args: argparse.Namespace) -> int:
    """Check every entry and data file; print every problem with file and field."""
    t0 = time.perf_counter()
    try:
        cat = load_catalogue(strict=False)
    except CatalogueError as exc:
        for p in exc.problems:
            console.print(f"[red]✗[/] {p}")
        return 1
    elapsed = time.perf_counter() - t0
    for w in cat.warnings:
        console.print(f"[yellow]warning:[/] {w}")
    if cat.problems:
        for p in cat.problems:
            console.print(f"[red]✗[/] {p}", highlight=False)
        console.print(f"[bold red]{len(cat.problems)} problem(s)[/] in the catalogue")
        return 1
    n_claims = len(cat.claims)
    console.print(f"[green]✓[/] {len(cat.heads)} head entries, {len(cat.bibliography)} references, "
                  f"{n_claims} claims: all valid ({elapsed * 1000:.0f} ms)")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """Run claims as pytest items and print a summary table (or the records as JSON)."""
    from headatlas.claims.runner import run_claims

    try:
        cat = load_catalogue()
    except CatalogueError as exc:
        for p in exc.problems:
            console.print(f"[red]✗[/] {p}")
        return 1
    if args.model and args.model not in cat.models and not args.model.startswith("hub:"):
        return _fail(f"unknown model {args.model!r}; known models: {', '.join(sorted(cat.models))} "
                     "(or hub:<repo> for any Hugging Face model)")
    if args.claim and args.claim not in cat.claims:
        return _fail(f"unknown claim {args.claim!r}; known claims: {', '.join(sorted(cat.claims))}")
    # The claims' pytest run loads its models through headatlas.models, which reads these.
    os.environ["HEADATLAS_DEVICE"], os.environ["HEADATLAS_DTYPE"] = args.device, args.dtype
    records, code = run_claims(cat, model=args.model, claim=args.claim, quiet=args.json,
                               accept=args.accept)
    if args.json:
        out.print_json(json.dumps(records))
    else:
        table = Table(title="Claims", show_lines=True)
        table.add_column("claim", overflow="fold")
        table.add_column("model")
        table.add_column("verdict")
        table.add_column("evidence (held-out value [95% interval] vs check; null; control)", overflow="fold")
        colour = {"holds": "green", "absent": "dark_orange", "inconclusive": "yellow",
                  "not applicable": "cyan", "error": "red", "not run": "grey50"}
        for r in records:
            lines = [evidence_line(c) for c in r.get("checks", []) if c.get("decisive") or r["verdict"] == "holds"]
            if r.get("reason"):
                lines.append(r["reason"])
            table.add_row(r["claim_id"], r["model"], f"[{colour.get(r['verdict'], 'white')}]{r['verdict']}[/]",
                          "\n".join(lines))
        out.print(table)
    # pytest's exit code carries the plugin's guard: a verdict that changed from the committed
    # one, a drift beyond tolerance, an error, or a claim holding on a random-weights twin.
    return code


def evidence_line(c: dict) -> str:
    """One check as a reader can verify it: '0.42 [0.38, 0.45] vs null 99th pct 0.05; needs >= 0.25'."""
    mark = {"holds": "✓", "absent": "✗", "inconclusive": "?"}.get(c.get("outcome"), "·")
    text = f"{mark} {c['variant']}: {c['measure']} = {c['value']:.3g}"
    if "interval" in c:
        text += f" [{c['interval'][0]:.3g}, {c['interval'][1]:.3g}]"
    if "null" in c:
        text += f" vs null {c['null']['percentile']:g}th pct {c['null']['at']:.3g} (p = {c['null']['p']:.3g})"
    text += f"; needs {c['check'].split(' ', 1)[1]}"
    if "control_value" in c:
        text += f"; control {c['control_value']:.3g} {'passes (bad)' if c['control_holds'] else 'fails (good)'}"
    return text


def cmd_new(args: argparse.Namespace) -> int:
    from headatlas.catalogue import find_root
    from headatlas.scaffold import scaffold

    try:
        made = scaffold(args.id, find_root())
    except (ValueError, CatalogueError) as exc:
        return _fail(str(exc))
    for path in made:
        console.print(f"[green]created[/] {path}")
    console.print("Next: replace every TODO (see CONTRIBUTING.md), run `headatlas validate`, "
                  "then write the claim test until `pytest claims` passes.")
    return 0


def cmd_scan(args: argparse.Namespace) -> int:
    """Score every head of a model with every scoring method; write JSON for the site."""
    from headatlas.models import ModelError, load_model
    from headatlas.scan import default_path, scan_model, write_scan

    try:
        model = load_model(args.model, device=args.device, dtype=args.dtype)
    except (ModelError, CatalogueError) as exc:
        return _fail(str(exc))
    result = scan_model(model)
    if args.out:
        path = Path(args.out)
    else:
        from headatlas.catalogue import find_root

        try:
            path = default_path(find_root(), model.name)
        except CatalogueError:
            path = default_path(Path.cwd(), model.name)
    write_scan(result, path)
    for stage, reason in result.skipped.items():
        console.print(f"[yellow]warning:[/] {stage} skipped: {reason}")
    console.print(f"[green]✓[/] {len(result.scores)} scores x {model.n_layers * model.n_heads} heads of "
                  f"{model.name} in {result.duration:.1f} s -> {path}")
    return 0


def cmd_seeds(args: argparse.Namespace) -> int:
    """Train every toy model with several seeds; record which head takes each role and when."""
    import json

    from headatlas.catalogue import find_root, load_model_registry
    from headatlas.methods import toymodels

    toys = {n: i for n, i in load_model_registry().items() if i.source.kind == "toy"}
    names = [n for n in toys if not args.task or toys[n].source.task in args.task or n in args.task]
    if not names:
        return _fail(f"no toy model matches {args.task}; toy models: {', '.join(toys)}")
    for name in names:
        study = toymodels.seed_study(name, range(args.seeds))
        path = toymodels.seeds_path(find_root(), study["task"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(study, indent=1) + "\n")
        for role, a in study["agreement"].items():
            console.print(f"[green]✓[/] {name} {role}: layer {a['modal_layer']} in {a['layer_agreement']:.0%} of "
                          f"{a['seeds']} seeds, formed in {a['formed']} (steps {a['formed_step']}) -> {path}")
    return 0


def _run_options(p: argparse.ArgumentParser) -> None:
    from headatlas.models import DEFAULT_DEVICE, DEFAULT_DTYPE, DTYPES

    p.add_argument("--device", default=DEFAULT_DEVICE,
                   help=f"torch device to run the model on, e.g. cuda (default {DEFAULT_DEVICE})")
    p.add_argument("--dtype", default=DEFAULT_DTYPE, choices=DTYPES,
                   help=f"weights dtype (default {DEFAULT_DTYPE}, the reference results are "
                        "recorded in; another is recorded with the weights' identity)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="headatlas", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("validate", help="check every head entry and data file")
    p.set_defaults(func=cmd_validate)
    p = sub.add_parser("verify", help="run claims and record their results")
    p.add_argument("--model", help="run the portable claims on this model instead of their listed ones")
    p.add_argument("--claim", help="run only this claim id")
    p.add_argument("--json", action="store_true", help="print the result records as JSON")
    p.add_argument("--accept", action="store_true",
                   help="record verdicts that differ from the committed ones instead of failing "
                        "(then commit results/ so a reviewer sees the change in the diff)")
    _run_options(p)
    p.set_defaults(func=cmd_verify)
    p = sub.add_parser("new", help="scaffold a head entry and a claim test that fails until written")
    p.add_argument("id", help="kebab-case id of the head type, e.g. 'successor'")
    p.set_defaults(func=cmd_new)
    p = sub.add_parser("scan", help="score every head with every scoring method (JSON for the site)")
    p.add_argument("model", help="model name from catalogue/models.yaml, or hub:<repo>")
    p.add_argument("--out", help="output JSON path (default results/scans/<model>.json)")
    _run_options(p)
    p.set_defaults(func=cmd_scan)
    p = sub.add_parser("seeds", help="train each toy model with several seeds and compare the heads' roles")
    p.add_argument("--task", action="append", help="only this toy task or model (repeatable)")
    p.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default 5)")
    p.set_defaults(func=cmd_seeds)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
