"""Every kind of notification reads well in both languages, on every front end.

The notices come from `tests.notification_samples` (built from the typed payloads,
stored as JSON and read back the way a delivery loop reads them); a kind without
a sample, or without a renderer, fails here.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

from bots.console.console import render_plain
from bots.core.notifications import render_notice, render_notification
from bots.core.replies import Reply
from bots.discord.community import trade_post
from bots.discord.rendering import message_kwargs, render_view
from bots.telegram.rendering import render_keyboard, render_messages
from robotrader.languages import tags
from robotrader.notifications import (
    Notice,
    NotificationKind,
    TradeClosedNotice,
    TradeOpenedNotice,
    UnreadableNotification,
)
from tests.notification_samples import SAMPLES

CASES = [(notice, language) for notice in SAMPLES for language in tags()]


def _case_id(case: Any) -> str:
    return str(case.kind) if hasattr(case, "kind") else str(case)


def _delivered(notice: Notice, language: str) -> Reply:
    """Rendered as a delivery loop does: from the stored kind and JSON payload."""
    stored = json.loads(json.dumps(notice.to_payload()))
    return render_notification(str(notice.kind), stored, language)


def _assert_words(text: str, where: str) -> None:
    assert text.strip(), where
    assert "{" not in text and "notify." not in text, (where, text)


def test_every_kind_has_a_sample() -> None:
    assert {notice.kind for notice in SAMPLES} == set(NotificationKind)


@pytest.mark.parametrize(("notice", "language"), CASES, ids=_case_id)
def test_renders_on_telegram_and_the_console(
    notice: Notice, language: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="robotrader.i18n")
    reply = _delivered(notice, language)
    _assert_words("\n".join(render_messages(reply)), f"telegram {notice.kind} {language}")
    _assert_words(render_plain(reply, []), f"console {notice.kind} {language}")
    if reply.buttons:
        assert render_keyboard(reply) is not None
    assert not caplog.records, [r.getMessage() for r in caplog.records]  # no missing key


@pytest.mark.parametrize(("notice", "language"), CASES, ids=_case_id)
async def test_renders_on_discord(
    notice: Notice, language: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="robotrader.i18n")
    reply = _delivered(notice, language)
    kwargs = message_kwargs(reply, render_view(reply, timeout=1))
    embeds = kwargs["embeds"]
    assert embeds, (notice.kind, language)
    text = "\n".join(f"{e.title or ''}\n{e.description or ''}" for e in embeds)
    _assert_words(text, f"discord {notice.kind} {language}")
    assert ("view" in kwargs) == bool(reply.buttons)
    post = trade_post(str(notice.kind), notice.to_payload(), "42", language)
    if isinstance(notice, TradeOpenedNotice | TradeClosedNotice):
        assert post is not None and "<@42>" in post and notice.symbol in post
        _assert_words(post, f"community {notice.kind} {language}")
        assert str(notice.amount) not in post  # a community sees no amounts
    else:
        assert post is None
    assert not caplog.records, [r.getMessage() for r in caplog.records]


def test_a_row_of_an_unknown_kind_is_refused_not_given_a_generic_text() -> None:
    with pytest.raises(UnreadableNotification):
        render_notification("margin_call", {"bot": "x"}, "en")


@dataclass(frozen=True)
class _Unrendered:
    """A notice no renderer knows (mypy refuses it; at run time the match does)."""

    kind: ClassVar[str] = "unrendered"


def test_a_kind_without_a_renderer_fails() -> None:
    with pytest.raises(AssertionError):
        render_notice(_Unrendered(), "en")  # type: ignore[arg-type]


def test_a_losing_sale_reads_as_a_loss_and_a_downgrade_names_the_paused_bots() -> None:
    loss = next(n for n in SAMPLES if isinstance(n, TradeClosedNotice) and n.pnl < 0)
    win = next(n for n in SAMPLES if isinstance(n, TradeClosedNotice) and n.pnl >= 0)
    assert _delivered(loss, "en").plain() != _delivered(win, "en").plain()
    downgrade = next(n for n in SAMPLES if getattr(n, "downgrade", False))
    assert "grid-eth" in _delivered(downgrade, "pt-BR").plain()
    rejected = [n for n in SAMPLES if n.kind == NotificationKind.ORDER_REJECTED]
    assert "minimum 5" in _delivered(rejected[1], "en").plain()


def test_a_kill_switch_stored_before_orders_could_wait_still_renders() -> None:
    text = render_notification("kill_switch", {"bots": 2, "closing": 1}, "pt-BR").plain()
    _assert_words(text, "old kill_switch row")
