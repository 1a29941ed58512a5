"""Registered secrets never reach a log record, in messages or in tracebacks."""

from __future__ import annotations

import logging

import pytest

from robotrader.logging_setup import redact


def test_secrets_are_masked_in_messages_and_exceptions(caplog: pytest.LogCaptureFixture) -> None:
    secret = "FAKE-SECRET-logging-9f8e7d"
    redact(secret)
    log = logging.getLogger("robotrader.test")
    with caplog.at_level(logging.INFO):
        log.info("calling https://api.example/bot%s/getMe", secret)
        try:
            raise RuntimeError(f"request failed for token {secret}")
        except RuntimeError:
            log.exception("boom")
    assert secret not in caplog.text
    assert "***" in caplog.text


def test_url_encoded_secrets_are_masked_too(caplog: pytest.LogCaptureFixture) -> None:
    token = "123456:FAKE-TOKEN-encoded-x1"
    redact(token)
    with caplog.at_level(logging.INFO):
        logging.getLogger("httpx").info("GET http://h/file/bot123456%3AFAKE-TOKEN-encoded-x1/a.jpg")
    assert "FAKE-TOKEN" not in caplog.text
