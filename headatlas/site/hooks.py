"""mkdocs hook (named in mkdocs.yml) that adds the generated pages to every build.

on_config loads the catalogue and results once and sets the navigation; on_files hands mkdocs
the generated pages and images as virtual files. There are no "edit" links: the project names no
public repository (mkdocs.yml sets no repo_url). Notebook pages get a link to download their
.ipynb, which mkdocs-jupyter copies next to the page (include_source).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from html import escape
from pathlib import Path

try:
    import headatlas  # noqa: F401
except ImportError:  # mkdocs loads hooks by path; make the package importable from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

from headatlas.catalogue import CatalogueError, find_root, load_catalogue
from headatlas.claims.results import ResultStore, results_dir
from headatlas.site import figures, seeds
from headatlas.site.pages import Generated, SiteBuilder

log = logging.getLogger("mkdocs.hooks.headatlas")
_state: dict = {}


def _hand_written(docs: Path) -> tuple[list[str], list[str]]:
    """Notebooks under docs/notebooks/ and markdown pages besides the home page, for the nav."""
    notebooks = sorted(p.relative_to(docs).as_posix() for p in docs.glob("notebooks/*.ipynb"))
    pages = sorted(p.relative_to(docs).as_posix() for p in docs.rglob("*.md") if p != docs / "index.md")
    return notebooks, pages


def _scans(directory: Path) -> dict[str, dict]:
    """results/scans/<model>.json from `headatlas scan`, by model; optional, so a scan that cannot
    be read is skipped with a warning rather than failing the build."""
    out = {}
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data.get("scores"), dict):
                raise ValueError("no 'scores' mapping")
            out[str(data.get("model") or path.stem)] = data
        except (ValueError, AttributeError) as exc:
            log.warning(f"headatlas: skipping scan {path}: {exc}")
    return out


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
    figures.CACHE_DIR = root / ".cache" / "headatlas-site"  # git-ignored
    scans = _scans(results_dir(root) / "scans")
    docs = Path(config.docs_dir)
    notebooks, pages = _hand_written(docs)
    builder = SiteBuilder(cat, results, directory_urls=config.use_directory_urls, extra_pages=pages, scans=scans)
    try:
        generated = builder.pages()
    except ValueError as exc:  # e.g. two head pages contradicting each other (SiteBuilder.check_membership)
        raise PluginError(str(exc)) from None
    studies = seeds.load_studies(results_dir(root))  # toy-model seed study (headatlas seeds)
    text, images = seeds.page(studies)
    generated += [Generated(seeds.PAGE, text), *(Generated(uri, png) for uri, png in images)]
    _state.update(root=root, builder=builder, generated=generated, t0=t0)
    if not config.nav:
        config.nav = builder.nav(notebooks) + [{"Seed study (toy models)": seeds.PAGE}]
    return config


def on_files(files, config):
    builder = _state["builder"]
    for g in _state["generated"]:
        if files.get_file_from_path(g.src_uri) is not None:
            raise PluginError(f"docs/{g.src_uri} would hide a generated page; rename or delete it")
        files.append(File.generated(config, g.src_uri, content=g.content))
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


# Notebook pages (mkdocs-jupyter) carry scripts that load MathJax and Mermaid from a CDN. The
# notebooks need neither, and the site must load nothing from the network: drop every script that
# would fetch from another host.
_SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script>", re.S | re.I)
_REMOTE_SRC = re.compile(r"""\bsrc\s*=\s*["']?(?:https?:)?//""", re.I)
_REMOTE_LOAD = re.compile(r"""(?:import\s*\(\s*|from\s+|\.src\s*=\s*)["'](?:https?:)?//""", re.I)
_MATHJAX_CONFIG = re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->", re.S)


def strip_remote_scripts(html: str) -> str:
    html = _MATHJAX_CONFIG.sub("", html)
    return _SCRIPT.sub(lambda m: "" if _REMOTE_SRC.search(m[1]) or _REMOTE_LOAD.search(m[2]) else m[0], html)


def on_page_content(html, page, config, files):
    if page.file.src_uri.endswith(".ipynb"):
        html = strip_remote_scripts(html)
        name = escape(Path(page.file.src_uri).name)
        html = (f'<p class="ha-download"><a href="{name}" download>Download this notebook ({name})</a>: it runs '
                "as it is in the project's environment (<code>.venv</code>), offline.</p>" + html)
    return html
