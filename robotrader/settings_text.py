"""A bot's settings (robotrader.use_cases.bot_settings) in words: the same in chat and on the web.

The one-line form (``tp=2:50,4:50 trail=1.5@2``) is what a trader types; this is what
they read on a bot's card and before creating it: "50 % at +2 %, 50 % at +4 %",
"1.5 % under the highest price, once up 2 %".
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from babel.numbers import format_decimal

from robotrader import formatting, languages
from robotrader.i18n import translate
from robotrader.use_cases.bot_settings import OPTIONS, BotSettings, parse_options


def _pct(value: Decimal, language: str) -> str:
    return format_decimal(value, format="#,##0.##", locale=languages.get(language).formats)


def value_text(key: str, settings: BotSettings, language: str) -> str | None:
    """Option ``key`` of ``settings`` in words; None when it is off."""

    def t(key: str, **args: str) -> str:
        return translate(language, key, **args)

    match key:
        case "tf":
            return settings.timeframe
        case "sl" if settings.stop_loss_pct is not None:
            return t("bot_setting.value.sl", pct=_pct(settings.stop_loss_pct, language))
        case "tp" if settings.targets:
            return ", ".join(
                t(
                    "bot_setting.value.target",
                    share=_pct(t_.share_pct, language),
                    pct=_pct(t_.profit_pct, language),
                )
                for t_ in settings.targets
            )
        case "tp" if settings.take_profit_pct is not None:
            return t("bot_setting.value.tp", pct=_pct(settings.take_profit_pct, language))
        case "trail" if settings.trailing_stop_pct is not None:
            distance = _pct(settings.trailing_stop_pct, language)
            if settings.trailing_arm_pct is None:
                return t("bot_setting.value.trail", pct=distance)
            return t(
                "bot_setting.value.trail_armed",
                pct=distance,
                arm=_pct(settings.trailing_arm_pct, language),
            )
        case "be" if settings.breakeven:
            return t("bot_setting.value.on")
        case "max" if settings.max_position is not None:
            return formatting.money(settings.max_position, language)
        case "dll" if settings.daily_loss_limit_pct is not None:
            return t("bot_setting.value.dll", pct=_pct(settings.daily_loss_limit_pct, language))
    return None


def setting_rows(
    settings: BotSettings, language: str, *, with_off: bool = False
) -> list[tuple[str, str]]:
    """``(label, value)`` per option in declaration order; those off only ``with_off`` ("—")."""
    rows = []
    for key in OPTIONS:
        text = value_text(key, settings, language)
        if text is not None or with_off:
            rows.append((translate(language, f"bot_setting.{key}"), text or "—"))
    return rows


def code_text(key: str, code: str | None, language: str) -> str | None:
    """An option's value as typed (``tp=2:50,4:50``: ``"2:50,4:50"``) in words; None when off.

    For an edit's before and after, which keep the typed form (the REST API answers it).
    """
    if code is None:
        return None
    settings = replace(BotSettings(), **parse_options([f"{key}={code}"], None).settings)
    return value_text(key, settings, language)
