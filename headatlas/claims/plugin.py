"""pytest plugin that turns `@claim(...)` tests into recorded, per-model claim runs, and guards
the committed verdicts.

- Parametrizes each claim test over the models its spec lists (or `--model`, for portable
  claims), plus the default model's random-weights twin for every portable claim, so a claim
  is written once and run per model.
- Loads each model once per session (headatlas.models memoizes).
- Turns the outcome into a verdict (runtime.VERDICTS): what `run.conclude()` decided, or
  "not applicable" (the test raised NotApplicable), "not run" (weights unavailable), "error"
  (anything else raised, or the test never concluded). A crash is never recorded as absent.
- Guards, unless `--accept`: a claim test fails when its verdict differs from the committed
  one, when a checked value drifts beyond its tolerance, when there is no committed record to
  compare with, on an error, and when a claim holds on a random-weights twin. An "absent"
  that was committed as "absent" passes: CI guards results, it does not demand passes.
- Writes every record to the per-model results file as soon as its test ends.
"""

from __future__ import annotations

import datetime as _dt
import time

import pytest

from headatlas.catalogue import CatalogueError, load_catalogue
from headatlas.claims.results import ResultStore, results_dir
from headatlas.claims.runtime import ClaimRun, NotApplicable, ProtocolError

RECORDS = pytest.StashKey[list]()
BASELINE = pytest.StashKey[object]()
CATALOGUE = pytest.StashKey[object]()
RUN = pytest.StashKey[ClaimRun]()
STARTED = pytest.StashKey[tuple]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("headatlas")
    group.addoption("--model", dest="headatlas_model", default=None,
                    help="run portable claims on this model instead of the ones their specs list")
    group.addoption("--claim", dest="headatlas_claim", default=None, help="run only this claim id")
    group.addoption("--full-matrix", dest="headatlas_full", action="store_true",
                    help="run every portable claim on every model, also on models whose "
                         "`test_sample` limits what the test suite runs on them")
    group.addoption("--no-record", dest="headatlas_no_record", action="store_true",
                    help="do not write claim results to the results files")
    group.addoption("--accept", dest="headatlas_accept", action="store_true",
                    help="record new verdicts and values instead of failing when they differ from "
                         "the committed ones (commit results/ afterwards so a reviewer sees the change)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "claim(id): the test implements the claim `id` of a head entry")
    config.stash[RECORDS] = []
    config.stash[BASELINE] = None


def _catalogue(config: pytest.Config):
    if CATALOGUE not in config.stash:
        try:
            config.stash[CATALOGUE] = load_catalogue(config.rootpath)
        except CatalogueError as exc:
            raise pytest.UsageError("the catalogue has problems; run `headatlas validate`:\n" + str(exc)) from None
    return config.stash[CATALOGUE]


def models_for(cat, spec, override: str | None) -> list[str]:
    """The models a claim runs on: its spec's list plus, for a portable claim, the twin of each
    listed model that has one; `--model` narrows (or, for portable claims, replaces) the list."""
    models = list(spec.models)
    if spec.portable:
        models += [name for name, info in cat.models.items()
                   if info.twin_of and info.twin_of in spec.models and name not in models]
    if override:
        if override in models:
            return [override]
        return [override] if spec.portable else []
    return models


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("claim")
    if marker is None:
        return
    if "run" not in metafunc.fixturenames:
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: a @claim test must take the `run` fixture")
    claim_id = marker.args[0]
    cat = _catalogue(metafunc.config)
    if claim_id not in cat.claims:
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: no head entry declares claim {claim_id!r}")
    _, spec = cat.claims[claim_id]
    models = models_for(cat, spec, metafunc.config.getoption("headatlas_model"))
    params = [pytest.param((claim_id, m), id=m) for m in models]
    if not params:  # not meant for this model: collected, then deselected (see below)
        params = [pytest.param((claim_id, None), id="not-for-this-model")]
    metafunc.parametrize("run", params, indirect=True)


def sampled_out(cat, claim_id: str, model: str) -> bool:
    """Whether the test suite leaves this (claim, model) pair to the main command: the claim is a
    portable one outside the model's `test_sample`, or in its `test_skip` (claims written for that
    model alone always run)."""
    info = cat.models.get(model)
    _, spec = cat.claims[claim_id]
    if not (info and spec.portable):
        return False
    return (info.test_sample is not None and claim_id not in info.test_sample) or claim_id in info.test_skip


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wanted = config.getoption("headatlas_claim")
    # An explicit model, claim or --full-matrix asks for the pair: the sample does not apply.
    sample = not (config.getoption("headatlas_full") or wanted or config.getoption("headatlas_model"))
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        param = callspec.params.get("run") if callspec else None
        if param is not None and param[1] is None:
            drop.append(item)
        elif wanted and (param is None or param[0] != wanted):
            drop.append(item)
        elif sample and param is not None and sampled_out(_catalogue(config), *param):
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
    # One model in memory at a time: run claims grouped by model (stable within a model).
    order = {}

    def model_of(item):
        callspec = getattr(item, "callspec", None)
        param = callspec.params.get("run") if callspec else None
        return param[1] if param else ""
    for item in items:
        order.setdefault(model_of(item) or "", len(order))
    items.sort(key=lambda it: order[model_of(it) or ""])


@pytest.fixture
def run(request: pytest.FixtureRequest) -> ClaimRun:
    """The claim being run: spec, model (loaded once per session) and measurement recorder."""
    from headatlas.models import try_load

    claim_id, model_name = request.param
    cat = _catalogue(request.config)
    entry, spec = cat.claims[claim_id]
    request.node.stash[STARTED] = (_dt.datetime.now(_dt.timezone.utc), time.perf_counter())
    baseline = _baseline(request.config, model_name, claim_id)
    claim_run = ClaimRun(entry, spec, model_name, None, baseline)
    request.node.stash[RUN] = claim_run
    model, reason = try_load(model_name)
    if model is None:
        claim_run.set_outcome("not run", reason)
        info = cat.models.get(model_name)
        if info is not None and info.embedded:
            pytest.fail(f"the embedded model {model_name} could not be loaded: {reason}; "
                        "run scripts/bootstrap.sh", pytrace=False)
        committed = (baseline or {}).get("verdict")
        if committed not in (None, "not run") and not request.config.getoption("headatlas_accept"):
            pytest.fail(f"weights unavailable ({reason}), but the committed verdict is {committed!r}",
                        pytrace=False)
        pytest.skip(reason)
    claim_run.model = model
    return claim_run


def _baseline(config: pytest.Config, model: str, claim_id: str) -> dict | None:
    """The record committed before this session started (read once, before anything is written)."""
    if config.stash[BASELINE] is None:
        config.stash[BASELINE] = ResultStore(results_dir(_catalogue(config).root)).all()
    return config.stash[BASELINE].get(model, {}).get("records", {}).get(claim_id)


def _comparable(run: ClaimRun) -> str:
    """Why the committed record cannot be compared with this run ('' when it can)."""
    b = run.baseline
    if not b:
        return "there is no committed result for it"
    for key, now in (("data", run.spec.data), ("params", run.spec.params)):
        if b.get(key) != now:
            return f"the committed result was measured with other {key}"
    if "verdict" not in b:
        return "the committed result predates the claim protocol (it has no verdict)"
    return ""


def guard(run: ClaimRun, accept: bool) -> list[str]:
    """Why this run must fail the build (empty when it may pass)."""
    problems = []
    info = run.model.info if run.model else None
    if info is not None and info.twin_of and run.verdict == "holds":
        problems.append(f"the claim holds on {run.model_name}, a random-weights twin of {info.twin_of}: "
                        "its checks do not tell a trained model from noise")
    if accept:
        return problems
    why = _comparable(run)
    if why:
        return problems + [f"{why}; run `headatlas verify --claim {run.spec.id} --model {run.model_name}` "
                           "and commit results/"]
    before = run.baseline["verdict"]
    if before != run.verdict:
        problems.append(f"verdict changed from the committed {before!r} to {run.verdict!r}"
                        + (f" ({run.reason})" if run.reason else "")
                        + "; if that is right, re-run with --accept and commit results/ with the reason")
    problems += run.drift()
    return problems


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    claim_run = item.stash.get(RUN, None)
    if claim_run is None:
        return (yield)
    try:
        result = yield
    except NotApplicable as exc:
        claim_run.set_outcome("not applicable", str(exc))
        result = None
    except pytest.skip.Exception:
        raise
    except BaseException as exc:
        claim_run.set_outcome("error", f"{type(exc).__name__}: {exc}")
        raise
    else:
        if claim_run.verdict is None:
            claim_run.set_outcome("error", "the claim test returned without calling run.conclude()")
            raise ProtocolError("the claim test returned without calling run.conclude(); no verdict was reached")
    problems = guard(claim_run, item.config.getoption("headatlas_accept"))
    if problems:
        raise AssertionError(f"{claim_run.spec.id} on {claim_run.model_name}: {claim_run.verdict}. "
                             + "; ".join(problems))
    return result


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    claim_run = item.stash.get(RUN, None)
    if claim_run is None:
        return
    if report.when == "setup":
        if report.passed:
            return
        if report.failed and claim_run.verdict != "not run":
            exc = call.excinfo.value if call.excinfo else report.longreprtext
            claim_run.set_outcome("error", f"error while setting up: {exc}")
        elif report.skipped and claim_run.verdict is None:
            claim_run.set_outcome("not run", _skip_reason(report))
    elif report.when == "call":
        if report.skipped and claim_run.verdict is None:
            claim_run.set_outcome("not run", _skip_reason(report))
    else:
        return
    started, t0 = item.stash[STARTED]
    record = claim_run.record(started, time.perf_counter() - t0)
    item.config.stash[RECORDS].append(record)
    report.user_properties.append(("headatlas_verdict", record["verdict"]))
    if not item.config.getoption("headatlas_no_record"):
        ResultStore(results_dir(_catalogue(item.config).root)).write([record])


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    records = config.stash.get(RECORDS, [])
    if not records:
        return
    tr = terminalreporter
    tr.section("head atlas claims")
    for r in records:
        decisive = next((c for c in r["checks"] if c.get("decisive")), None)
        shown = ""
        if decisive:
            shown = f"{decisive['measure']}={decisive['value']:.3g}"
            if "interval" in decisive:
                lo, hi = decisive["interval"]
                shown += f" [{lo:.3g}, {hi:.3g}]"
            if "null" in decisive:
                shown += f" (null {decisive['null']['percentile']:g}th pct {decisive['null']['at']:.3g})"
        tr.write_line(f"{r['verdict']:14} {r['claim_id']} [{r['model']}] {shown}"
                      + (f" - {r['reason'][:200]}" if r["reason"] else ""))
    # CI's log is where the time per model is read from (README's CI budget), so print it there
    per_model: dict[str, list[float]] = {}
    for r in records:
        per_model.setdefault(r["model"], []).append(float(r.get("duration_s", 0.0)))
    tr.write_line("time per model (claim bodies, model loads excluded): " + ", ".join(
        f"{m} {sum(d):.0f} s over {len(d)} claims" for m, d in per_model.items()))
