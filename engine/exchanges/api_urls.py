"""Point a ccxt exchange's REST endpoints at another base URL.

Operators and tests set ``ROBOTRADER_EXCHANGE_API_URLS`` to e.g.
``{"binance": "http://127.0.0.1:9001"}``; every URL in that exchange's
``urls['api']`` (a nested dict of strings) is rewritten to the new scheme and
host while its path is kept, so ccxt's own signing and parsing code runs
unchanged against the new server.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit


def rebase_url(url: str, base: str) -> str:
    """``https://api.binance.com/api/v3`` + ``http://127.0.0.1:9001`` -> ``http://127.0.0.1:9001/api/v3``."""
    target = urlsplit(base)
    source = urlsplit(url)
    path = target.path.rstrip("/") + source.path
    return urlunsplit((target.scheme, target.netloc, path, source.query, source.fragment))


def rewrite_api_urls(api: Any, base: str) -> Any:
    """Return a copy of a ccxt ``urls['api']`` value with every URL rebased."""
    if isinstance(api, str):
        return rebase_url(api, base) if "://" in api else api
    if isinstance(api, dict):
        return {key: rewrite_api_urls(value, base) for key, value in api.items()}
    return api


def point_exchange_at(exchange: Any, base: str) -> None:
    """Rewrite a ccxt exchange instance's ``urls['api']`` in place (on its own copy)."""
    urls = dict(exchange.urls)
    urls["api"] = rewrite_api_urls(urls["api"], base)
    exchange.urls = urls
