from __future__ import annotations

import uuid

from conveyor.api import ids


def test_ids_are_version_4_uuids_in_canonical_form() -> None:
    seen = set()
    for _ in range(5000):
        text = ids.uuid4()
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert str(parsed) == text
        seen.add(text)
    assert len(seen) == 5000
