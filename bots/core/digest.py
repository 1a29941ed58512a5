"""The messages one chat's due notifications go out as, in the user's language.

`robotrader.use_cases.notification_digest` decides what goes alone and what is
summarised; here each becomes a `Reply`: a notification alone as it always read,
fills as a table per bot. A digest too long for one message of the platform is cut
between rows (``fits`` is the platform's own measure, after its markup), each part a
message that holds, and acknowledges, exactly the fills it shows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bots.core.notifications import render_notification
from bots.core.replies import Block, Reply, Table, Title
from robotrader.formatting import amount, percent, price, signed_money
from robotrader.i18n import Translator
from robotrader.notifications import TradeClosedNotice, UnreadableNotification
from robotrader.use_cases.notification_delivery import ClaimedNotification
from robotrader.use_cases.notification_digest import BotFills, ChatDue, DigestFill

COLUMNS = (
    "digest.time",
    "digest.side",
    "digest.symbol",
    "digest.amount",
    "digest.price",
    "digest.pnl",
)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outgoing:
    """One message for one chat and the notifications it holds (settled together)."""

    reply: Reply
    notifications: tuple[ClaimedNotification, ...]
    digest: bool = False

    @property
    def first(self) -> ClaimedNotification:
        return self.notifications[0]

    @property
    def kind(self) -> str:
        """The kind of what it holds (a digest holds fills only)."""
        return self.first.kind

    @property
    def user_id(self) -> int:
        return self.first.user_id

    @property
    def chat_id(self) -> str | None:
        return self.first.chat_id

    @property
    def language(self) -> str:
        return self.first.language or "en"


def alone(notification: ClaimedNotification) -> Outgoing:
    """A notification as its own message (`UnreadableNotification` if nobody can read it)."""
    language = notification.language or "en"
    reply = render_notification(notification.kind, notification.payload, language)
    return Outgoing(reply, (notification,))


def fill_row(fill: DigestFill, language: str) -> list[str]:
    """A fill as the cells of its row: time, side, pair, amount, price, PnL."""
    t = Translator(language)
    lang = t.language
    notice = fill.notice
    pnl = "—"
    if isinstance(notice, TradeClosedNotice):
        money = signed_money(notice.pnl, lang, "").strip()
        pnl = f"{money} ({percent(notice.pnl_pct, lang)})"
    return [
        fill.notification.created_at.strftime("%H:%M:%S"),
        t(f"side.{notice.side}"),
        notice.symbol,
        amount(notice.amount, lang),
        price(notice.price, lang),
        pnl,
    ]


_Section = tuple[BotFills, list[DigestFill]]


def _page(sections: Sequence[_Section], part: int, total: int, language: str) -> Reply:
    t = Translator(language)
    title = t("digest.title", count=total) if part == 1 else t("digest.title_more", part=part)
    blocks: list[Block] = [Title(title)]
    header = [t(column) for column in COLUMNS]
    for group, fills in sections:
        blocks.append(Title(t("digest.bot", bot=group.bot, mode=t(f"mode.{group.mode}"))))
        blocks.append(Table(rows=[fill_row(f, language) for f in fills], header=header))
    return Reply(blocks=blocks)


def digest_messages(
    digest: Sequence[BotFills], language: str, fits: Callable[[Reply], bool]
) -> list[Outgoing]:
    """The digest as messages that each ``fits`` the platform, cut between rows.

    Rows keep their order (bots in the order of their first fill); a bot whose rows
    continue in the next message is named again there.
    """
    total = sum(len(group.fills) for group in digest)
    pages: list[list[_Section]] = []
    current: list[_Section] = []
    for group in digest:
        for fill in group.fills:
            trial = [(g, list(f)) for g, f in current]
            if trial and trial[-1][0] is group:
                trial[-1][1].append(fill)
            else:
                trial.append((group, [fill]))
            if not current or fits(_page(trial, len(pages) + 1, total, language)):
                current = trial  # a first row always goes, even one too long to fit
                continue
            pages.append(current)
            current = [(group, [fill])]
    if current:
        pages.append(current)
    return [
        Outgoing(
            _page(sections, part, total, language),
            tuple(f.notification for _, fills in sections for f in fills),
            digest=True,
        )
        for part, sections in enumerate(pages, start=1)
    ]


def chat_messages(chat: ChatDue, fits: Callable[[Reply], bool]) -> list[Outgoing]:
    """Everything due for one chat as the messages it goes in, in order.

    A notification nobody can read is left out (logged): its lease runs out and it is
    claimed again, by a newer version that can.
    """
    messages: list[Outgoing] = []
    for notification in chat.alone:
        try:
            messages.append(alone(notification))
        except UnreadableNotification:
            log.exception("delivery.unreadable id=%s", notification.notification_id)
    if chat.digest:
        language = chat.digest[0].fills[0].notification.language or "en"
        messages.extend(digest_messages(chat.digest, language, fits))
    return messages
