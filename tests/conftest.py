"""pytest's door to the shared test helpers, which live in ``tests/testlib.py``.

Test modules, helpers and benches import from ``testlib``, never from ``conftest``: pytest
imports every ``conftest.py`` under the module name ``conftest`` (prepend import mode), so a
sub-directory's own conftest.py (tests/reporter/server/, tests/reporter/reporters/) would
shadow this one for every module collected after it. The fixtures are re-exported here so
that pytest finds them.
"""

from testlib import (  # noqa: F401 - fixtures, discovered by pytest through this module
    cores,
    fixtures_dir,
    fixtures_left_untouched,
    minimize,
    programs,
)


# --- root skips that must not happen in CI --------------------------------------------------

import os  # noqa: E402
import re  # noqa: E402
from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402

#: Set by .ci/run (which runs as root): a test that would skip for lack of root fails instead,
#: so that a lost privilege or a read-only core_pattern cannot quietly turn root tests into skips.
REQUIRE_ROOT_ENV = "CRASHKIT_REQUIRE_ROOT_TESTS"
#: What a skip for lack of root says ("needs root ...", "... (root)", "needs root and setpriv").
_ROOT_SKIP = re.compile(r"\broot\b", re.IGNORECASE)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Under CRASHKIT_REQUIRE_ROOT_TESTS=1, a skip whose reason names root (from a ``skipif``
    mark, a fixture, or ``pytest.skip`` in the test, e.g. testlib's ``require_core_pattern``)
    is reported as a failure."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if not report.skipped or hasattr(report, "wasxfail") or \
            os.environ.get(REQUIRE_ROOT_ENV, "") in ("", "0"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if _ROOT_SKIP.search(reason):
        report.outcome = "failed"
        report.longrepr = f"would skip ({reason}), but {REQUIRE_ROOT_ENV} is set"
