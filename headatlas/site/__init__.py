"""The browsable site: mkdocs pages generated at build time from the catalogue and results.

Nothing on the site is copied by hand from the YAML: `hooks.py` (an mkdocs hook named in
mkdocs.yml) asks `pages.py` for every page and image and hands them to mkdocs as generated
files, so the site can never drift from the catalogue or the latest claim results.
"""
