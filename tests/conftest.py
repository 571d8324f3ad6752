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
