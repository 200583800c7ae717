from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.providers.wire_server import WireServer


@pytest.fixture
def wire() -> Iterator[WireServer]:
    server = WireServer()
    try:
        yield server
    finally:
        server.close()
