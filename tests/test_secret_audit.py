"""The secrets audit itself finds what it must (a check that cannot fail proves nothing)."""

from __future__ import annotations

import logging

from robotrader.logging_setup import redact
from tests.secret_audit import AUDIT, SecretAudit


def test_the_audit_recognises_every_kind_of_fake_secret() -> None:
    audit = SecretAudit()
    for text in (
        "key FAKEKEYabc123",
        "FAKESECRET-x",
        "pass FAKEPASS9",
        "sk_test_FAKE_1",
        "whsec_FAKE_2",
    ):
        audit.scan("sample", text)
    assert len(audit.hits) == 5
    audit.scan("sample", "an ordinary message about BTC/USDT")
    assert len(audit.hits) == 5


def test_a_registered_secret_never_reaches_the_log_audit() -> None:
    secret = "FAKESECRET-registered-audit-0001"
    redact(secret)
    before = len(AUDIT.hits)
    logging.getLogger("robotrader.audit").warning("leaking %s on purpose", secret)
    assert len(AUDIT.hits) == before, "the log record factory masked it before any handler saw it"
