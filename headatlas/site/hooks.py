"""mkdocs hook (named in mkdocs.yml) that adds the generated pages to every build.

on_config loads the catalogue and results once and sets the navigation; on_files hands mkdocs
the generated pages and images as virtual files and points each page's "edit" button at the
file a contributor should change (a head page at heads/<id>.yaml, hand-written pages at docs/).
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

try:
    import headatlas  # noqa: F401
except ImportError:  # mkdocs loads hooks by path; make the package importable from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

from headatlas.catalogue import CatalogueError, find_root, load_catalogue
from headatlas.claims.results import ResultStore, results_dir
from headatlas.site.pages import SiteBuilder

log = logging.getLogger("mkdocs.hooks.headatlas")
_state: dict = {}


def _hand_written(docs: Path) -> tuple[list[str], list[str]]:
    """Notebooks under docs/notebooks/ and markdown pages besides the home page, for the nav."""
    notebooks = sorted(p.relative_to(docs).as_posix() for p in docs.glob("notebooks/*.ipynb"))
    pages = sorted(p.relative_to(docs).as_posix() for p in docs.rglob("*.md") if p != docs / "index.md")
    return notebooks, pages


def on_config(config):
    t0 = time.perf_counter()
    root = find_root(Path(config.config_file_path).parent)
    try:
        cat = load_catalogue(root)
    except CatalogueError as exc:
        raise PluginError(f"the catalogue has problems; run `headatlas validate`:\n{exc}") from None
    try:
        results = ResultStore(results_dir(root)).all()
    except (ValueError, KeyError) as exc:
        raise PluginError(f"cannot read the results in {results_dir(root)}: {exc}") from None
    docs = Path(config.docs_dir)
    notebooks, pages = _hand_written(docs)
    builder = SiteBuilder(cat, results, directory_urls=config.use_directory_urls, extra_pages=pages)
    _state.update(root=root, builder=builder, generated=builder.pages(), t0=t0)
    if not config.nav:
        config.nav = builder.nav(notebooks)
    return config


def on_files(files, config):
    builder = _state["builder"]
    repo = Path(config.config_file_path).resolve().parent  # mkdocs.yml sits at the repository root
    try:
        docs_prefix = Path(config.docs_dir).resolve().relative_to(repo).as_posix()
    except ValueError:
        docs_prefix = None
    for f in files:
        if f.generated_by is None:
            f.edit_uri = f"{docs_prefix}/{f.src_uri}" if docs_prefix else None
    for g in _state["generated"]:
        if files.get_file_from_path(g.src_uri) is not None:
            raise PluginError(f"docs/{g.src_uri} would hide a generated page; rename or delete it")
        f = File.generated(config, g.src_uri, content=g.content)
        f.edit_uri = g.edit_uri
        files.append(f)
    log.info(f"headatlas: generated {len(_state['generated'])} files from {len(builder.cat.heads)} head entries "
             f"and {len(builder.records)} results in {time.perf_counter() - _state['t0']:.2f} s")
    return files


def on_serve(server, config, builder):
    """Rebuild when the catalogue or the results change, not only the hand-written docs."""
    root = _state.get("root")
    if root:
        for path in (root / "heads", root / "catalogue", results_dir(root)):
            if path.is_dir():
                server.watch(str(path))
    return server
