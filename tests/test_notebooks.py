"""SLOW (about 1-2 minutes): re-execute every notebook in docs/notebooks/ and fail if any cell
errors, so a notebook cannot rot while the site keeps showing its committed outputs.

The site renders the notebooks with the outputs committed in them (mkdocs-jupyter
`execute: false`); this test is what keeps those outputs reproducible. It loads SmolLM2-135M
(packaged on PyPI, works offline) in a fresh python3 kernel from this virtual environment and
runs each notebook top to bottom in a scratch copy; the committed files are never modified.
Skip it with `-m "not notebooks"`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "docs" / "notebooks").glob("*.ipynb"))
TIME_LIMIT_S = 600  # per cell; a notebook is meant to run in about a minute on 2 CPU cores

pytestmark = pytest.mark.notebooks


@pytest.fixture(scope="module")
def kernel_name() -> str:
    """A kernel spec named python3 that runs this interpreter (installed into the venv if absent)."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec("python3")
        ok = Path(spec.argv[0]).resolve() == Path(sys.executable).resolve() or spec.argv[0] in ("python", "python3")
    except NoSuchKernel:
        ok = False
    if not ok:
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--sys-prefix", "--name", "python3"],
                       check=True, capture_output=True)
    return "python3"


def test_there_are_notebooks():
    assert {p.stem for p in NOTEBOOKS} >= {"find-induction-heads", "trace-ioi-circuit"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_without_errors(path: Path, kernel_name: str, tmp_path: Path):
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    committed = nbformat.read(path, as_version=4)
    # the committed notebook carries its outputs, so the site can render it without running it
    assert any(c.get("outputs") for c in committed.cells if c.cell_type == "code"), f"{path.name} has no outputs"
    work = tmp_path / path.name
    shutil.copy(path, work)
    nb = nbformat.read(work, as_version=4)
    client = NotebookClient(nb, kernel_name=kernel_name, timeout=TIME_LIMIT_S, allow_errors=False,
                            resources={"metadata": {"path": str(path.parent)}})
    # One torch thread: on a 2-core machine shared with other jobs, two threads contending for the
    # cores run several times slower than one.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    t0 = time.perf_counter()
    try:
        client.execute(env=env)
    except CellExecutionError as exc:
        pytest.fail(f"{path.name}: a cell raised an error:\n{exc}")
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, errors
    print(f"{path.name}: executed in {time.perf_counter() - t0:.1f} s")
