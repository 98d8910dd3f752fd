from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sqsd_faults.harness import Processes


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    """Starts the test's processes and kills whatever is still running at the end, pass or fail."""
    started = Processes(tmp_path)
    try:
        yield started
    finally:
        started.stop_all()
