"""The emulators' own tests drive the client libraries directly, without the product around them.

The product registers its bot token as a secret before making any request
(bots/telegram/service.py), so httpx's request log never shows it. These tests
do the same for the emulated token, for their duration only, so the run's
final secrets audit still catches the product if it ever forgets.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from robotrader import logging_setup
from tests.emulators.telegram import DEFAULT_TOKEN


@pytest.fixture(autouse=True, scope="module")
def token_registered_as_secret() -> Iterator[None]:
    saved = logging_setup._secrets
    logging_setup.redact(DEFAULT_TOKEN)
    yield
    logging_setup._secrets = saved
