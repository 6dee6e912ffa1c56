"""Safe YAML reading that turns every user mistake into a located, readable problem.

PyYAML's safe loader already refuses tags that would build Python objects; this module turns
that refusal (and syntax errors and duplicate keys) into a `Problem` naming the file, the
line and what was expected, so the validator can report all of them at once.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one input file."""

    file: str
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.field}" if self.field else self.file
        return f"{where}: {self.message}"


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that also rejects duplicate mapping keys."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False):
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first at line {seen[key] + 1})",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping
)


def display_path(path: Path, root: Path | None = None) -> str:
    """Path as a user would type it: relative to the project root when inside it."""
    try:
        return str(path.resolve().relative_to((root or Path.cwd()).resolve()))
    except ValueError:
        return str(path)


def read_yaml(path: Path, root: Path | None = None) -> tuple[Any, list[Problem]]:
    """Parse one YAML file safely. Returns (data, problems); data is None on any problem."""
    shown = display_path(path, root)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return None, [Problem(shown, "", f"cannot read file: {exc.strerror}")]
    except UnicodeDecodeError:
        return None, [Problem(shown, "", "file is not UTF-8 text")]
    try:
        return yaml.load(text, Loader=_StrictLoader), []  # noqa: S506 - strict safe loader
    except yaml.constructor.ConstructorError as exc:
        line = f"line {exc.problem_mark.line + 1}" if exc.problem_mark else ""
        problem = exc.problem or str(exc)
        if "could not determine a constructor for the tag" in problem:
            tag = problem.split("tag", 1)[1].strip().strip("'")
            tag = tag.replace("tag:yaml.org,2002:", "!!")
            problem = (
                f"YAML tag {tag} is not allowed: tags that construct objects could run code; "
                "write plain strings, numbers, lists and mappings"
            )
        return None, [Problem(shown, line, problem)]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}" if mark else ""
        what = getattr(exc, "problem", None) or str(exc)
        return None, [Problem(shown, line, f"malformed YAML: {what}")]


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON so that readers see the old file or the new one, never half of either."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp makes the file private (0600); a results file is as readable as any other.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
