"""Property-based: whatever a user types or presses, they get a reply, never a stack trace."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bots.core.context import ChatContext
from bots.core.core import ChatCore
from bots.core.rate_limit import RateLimiter
from bots.core.registry import ACTIONS, COMMANDS
from db.models import Platform
from db.session import Database
from robotrader.app import App
from robotrader.settings import Settings

_users = itertools.count(1)
INTERNAL_ERROR_MARKERS = ("ref ", "(ref")

words = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=10).map(lambda w: w + "\x00"),
    st.sampled_from(["BTC/USDT", "eth", "binance", "bybit", "1000", "-5", "1e309", "NaN", "0",
                     "sma_crossover", "grid", "off", "pt", "fast=5", "slow=1", "'", '"', "\\",
                     "dca", "signal", "999999999999", "x" * 300, "🚀", "1", "hour", "25"]),
)  # fmt: skip


@pytest.fixture
async def core(settings: Settings, database: Database) -> AsyncIterator[ChatCore]:
    app = App.from_settings(settings.model_copy(update={"market_data": "replay"}), database)
    yield ChatCore(app, rate_limiter=RateLimiter(rate=1000, burst=1000))
    await app.backtests.close()  # backtests a fuzzed command started end with the test


def _ctx(private: bool = True, language: str | None = "pt-br") -> ChatContext:
    user = next(_users)
    return ChatContext(
        platform=Platform.TELEGRAM,
        platform_user_id=f"fuzz{user}",
        chat_id=f"fuzz{user}" if private else "-100777",
        is_private=private,
        client_language=language,
        display_name="Fuzz",
    )


def _assert_answered(replies: list, private: bool = True) -> None:
    if private:
        assert replies, "every private message gets an answer"
    for reply in replies:
        text = reply.plain()
        assert not any(marker in text for marker in INTERNAL_ERROR_MARKERS), text


FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FUZZ
@given(
    name=st.sampled_from(sorted(COMMANDS)), args=st.lists(words, max_size=5), private=st.booleans()
)
async def test_every_command_with_any_arguments_answers(
    core: ChatCore, name: str, args: list[str], private: bool
) -> None:
    ctx = _ctx(private)
    text = " ".join([f"/{name}", *args])
    replies = await core.handle_text(ctx, text)
    _assert_answered(replies, private)


@FUZZ
@given(
    messages=st.lists(
        st.one_of(words, st.sampled_from(sorted(f"/{c}" for c in COMMANDS))), min_size=1, max_size=6
    )
)
async def test_any_conversation_answers(core: ChatCore, messages: list[str]) -> None:
    """Dialog answers, commands and chatter in any order (as a confused user would send them)."""
    ctx = _ctx()
    for message in messages:
        if not message.strip():
            continue
        _assert_answered(await core.handle_text(ctx, message))


@FUZZ
@given(
    verb=st.sampled_from(sorted(ACTIONS)),
    args=st.lists(words.filter(lambda w: ":" not in w), max_size=3),
)
async def test_any_button_payload_answers(core: ChatCore, verb: str, args: list[str]) -> None:
    payload = ":".join(["v1", verb, *args])
    _assert_answered(await core.handle_action(_ctx(), payload))


@FUZZ
@given(payload=st.text(max_size=80))
async def test_garbage_button_payloads_answer(core: ChatCore, payload: str) -> None:
    _assert_answered(await core.handle_action(_ctx(), payload))


async def test_nul_bytes_never_reach_the_database(core: ChatCore) -> None:
    """PostgreSQL refuses NUL in text; found by the property tests above."""
    ctx = _ctx()
    for text in ("/startbot a\x00b", "/newbot binance BTC\x00/USDT sma_crossover 100", "\x00"):
        _assert_answered(await core.handle_text(ctx, text))


async def test_free_plan_is_told_at_the_strategy_step(core: ChatCore) -> None:
    ctx = _ctx(language="en")
    await core.handle_text(ctx, "/newbot")
    await core.handle_action(ctx, "v1:nbx:binance")
    await core.handle_action(ctx, "v1:nbs:BTC/USDT")
    replies = await core.handle_action(ctx, "v1:nbt:dca")
    assert "isn't in the Free plan" in replies[0].plain()
    assert "Pro unlocks it" in replies[0].plain()


@FUZZ
@given(
    presses=st.lists(
        st.sampled_from(
            [
                "nb",
                "nbx:binance",
                "nbx:bybit",
                "nbs:BTC/USDT",
                "nbs:next",
                "nbt:sma_crossover",
                "nbt:grid",
                "nbp",
                "nbf:1h",
                "nbf:skip",
                "nbr:sl3_trail",
                "nbr:done",
                "nbk:100",
                "nbm:live",
                "nbm:paper",
                "nbc",
                "cancel",
            ]
        ),
        min_size=1,
        max_size=10,
    )
)
async def test_newbot_buttons_in_any_order_answer(core: ChatCore, presses: list[str]) -> None:
    """Old or out-of-order dialog buttons (a user scrolling back) never break anything."""
    ctx = _ctx()
    await core.handle_text(ctx, "/newbot")
    for press in presses:
        _assert_answered(await core.handle_action(ctx, f"v1:{press}"))


@FUZZ
@given(
    presses=st.lists(
        st.sampled_from(
            [
                "bt",
                "btt:sma_crossover",
                "btt:signal",
                "btt:b1",
                "bty:sma_crossover:BTC/USDT",
                "bty:rsi:eth",
                "btp:sma_crossover:BTC/USDT:1",
                "btp:sma_crossover:BTC/USDT:365",
                "btp:dca:BTC/USDT:7",
                "btp:b1:BTC/USDT:7",
                "btv",
                "ch",
            ]
        ),
        min_size=1,
        max_size=8,
    )
)
async def test_backtest_buttons_in_any_order_answer(core: ChatCore, presses: list[str]) -> None:
    """Old, out-of-order or foreign backtest buttons answer; one that runs answers at once."""
    ctx = _ctx()
    for press in presses:
        _assert_answered(await core.handle_action(ctx, f"v1:{press}"))
