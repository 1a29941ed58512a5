"""The suite's final secrets check: no fake secret may show up in a log, a database or a chat.

Every test that handles a key uses recognisable fake secrets (``FAKEKEY…``,
``FAKESECRET…``, ``FAKEPASS…``, ``sk_test_FAKE…``, ``whsec_FAKE…``, the
emulated bot token). The audit scans every log record of the run, every
database a test used (tables and, for SQLite, the file itself) and every
message a chat emulator received from the product. Any hit fails the run.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from db.models import Base
from db.session import Database
from tests.emulators.telegram import DEFAULT_TOKEN

PATTERN = re.compile(
    r"FAKE(?:KEY|SECRET|PASS)[\w\-]*|sk_test_FAKE\w*|whsec_FAKE\w*|"
    + re.escape(DEFAULT_TOKEN.split(":", 1)[1])
)


@dataclass
class SecretAudit:
    hits: list[tuple[str, str]] = field(default_factory=list)
    scanned: dict[str, int] = field(default_factory=dict)

    def scan(self, source: str, text: str) -> None:
        self.scanned[source] = self.scanned.get(source, 0) + 1
        for match in PATTERN.finditer(text):
            self.hits.append((source, match.group(0)[:24] + "…"))

    async def scan_database(self, database: Database) -> None:
        async with database.sessions() as session:
            for table in Base.metadata.sorted_tables:
                for row in (await session.execute(select(table))).all():
                    for value in row:
                        text = (
                            bytes(value).decode("latin-1")
                            if isinstance(value, bytes | memoryview)
                            else str(value)
                        )
                        self.scan(f"database:{table.name}", text)

    def scan_file(self, path: Path) -> None:
        for candidate in (path, path.with_name(path.name + "-wal")):
            if candidate.exists():
                self.scan(f"file:{candidate.name}", candidate.read_bytes().decode("latin-1"))

    def scan_chat(self, source: str, messages: list[dict]) -> None:  # type: ignore[type-arg]
        for message in messages:
            self.scan(source, str(message.get("text") or "") + str(message.get("caption") or ""))


AUDIT = SecretAudit()


class AuditHandler(logging.Handler):
    """Sees every record that reaches the root logger, formatted with its traceback."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            AUDIT.scan(f"log:{record.name}", self.format(record))

        except Exception:  # the audit must never break a test
            self.handleError(record)
