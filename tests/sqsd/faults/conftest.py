from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sqsd.faults.harness import SqsdProcesses


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[SqsdProcesses]:
    """Starts the test's processes and kills whatever is still running at the end, pass or fail."""
    with SqsdProcesses(tmp_path) as started:
        yield started
