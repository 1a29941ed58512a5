"""Registered secrets never reach a log record, in messages or in tracebacks."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pydantic import SecretStr

from db.vault import SecretBinding, generate_master_key
from robotrader.logging_setup import redact
from robotrader.master_key import load_vault
from robotrader.settings import Settings


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


def test_every_process_that_decrypts_a_key_masks_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Workers and the web app decrypt keys the chat process never saw: the vault every
    process loads registers each secret it decrypts with the redactor."""
    settings = Settings(_env_file=None, data_dir=tmp_path, master_key=generate_master_key())  # type: ignore[call-arg]
    binding = SecretBinding(user_id=1, credential_id="c1", field="secret")
    secret = "FAKESECRET-decrypted-by-a-worker-1b2c3d"
    sealed = load_vault(settings).encrypt(SecretStr(secret), binding)

    load_vault(settings).decrypt(sealed, binding)  # as a worker placing an order would

    with caplog.at_level(logging.INFO):
        logging.getLogger("engine.test").warning("binance said no to key %s", secret)
    assert secret not in caplog.text and "***" in caplog.text
