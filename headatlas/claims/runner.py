"""`headatlas verify`: run the claim tests through pytest with a progress display."""

from __future__ import annotations

import contextlib
import io
from typing import Any

import pytest
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from headatlas.claims import plugin


class _Progress:
    """pytest plugin that drives a rich progress bar instead of pytest's own output."""

    def __init__(self, quiet: bool):
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=Console(stderr=True), disable=quiet)
        self.task = None

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.progress.start()
        self.task = self.progress.add_task("loading model", total=len(session.items))

    def pytest_runtest_logstart(self, nodeid: str, location) -> None:
        self.progress.update(self.task, description=f"running {nodeid.split('::')[-1]}")

    def pytest_runtest_logfinish(self, nodeid: str, location) -> None:
        self.progress.advance(self.task)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.progress.stop()


def run_claims(cat, *, model: str | None = None, claim: str | None = None,
               quiet: bool = False, accept: bool = False) -> tuple[list[dict[str, Any]], int]:
    """Run claims (all, one id, or all portable ones on one model); return records and pytest's exit code."""
    # The main command runs the whole matrix; the test suite may sample a slow model (test_sample,
    # test_skip).
    args = [str(cat.root / "claims"), "-p", "no:cacheprovider", "-q", "--no-header",
            "--rootdir", str(cat.root), "--full-matrix"]
    if model:
        args += ["--model", model]
    if claim:
        args += ["--claim", claim]
    if accept:
        args += ["--accept"]
    collector = _Collector()
    # pytest's own report goes to a buffer: the progress bar and the summary table replace it.
    # It is shown only when pytest itself failed (usage error, crash, nothing collected).
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = pytest.main(args, plugins=[collector, _Progress(quiet)])
    if int(code) not in (0, 1):
        Console(stderr=True).print(buffer.getvalue(), markup=False, highlight=False)
    return collector.records, int(code)


class _Collector:
    def __init__(self):
        self.records: list[dict[str, Any]] = []

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.records = list(session.config.stash.get(plugin.RECORDS, []))
