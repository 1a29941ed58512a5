"""The equity curve as inline SVG, drawn on the server: no chart library, no script."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal

from markupsafe import Markup, escape

from robotrader.use_cases.equity import EquityPoint

WIDTH, HEIGHT = 720, 240
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 92, 16, 16, 28


def equity_svg(
    points: Sequence[EquityPoint],
    *,
    label: Callable[[Decimal], str],
    date: Callable[[EquityPoint], str],
    title: str,
    note: str | None = None,
) -> Markup:
    """An SVG step line of ``points`` (time on x, cumulative PnL on y), with a zero line.

    Each value holds until the next point (equity changes when a trade closes), so the
    line is drawn flat to the next point's time, then up or down to its value. ``note``
    is written across the middle (e.g. that nothing was traded yet).

    Only presentation attributes are used (no style attributes): the pages' CSP
    allows no inline styles.
    """
    if not points:
        return Markup("")
    values = [float(p.value) for p in points]
    times = [p.at.timestamp() for p in points]
    low, high = min([*values, 0.0]), max([*values, 0.0])
    if high - low < 1e-9:
        high, low = high + 1, low - 1
    start, end = times[0], times[-1]
    span = end - start or 1.0
    inner_w = WIDTH - PAD_LEFT - PAD_RIGHT
    inner_h = HEIGHT - PAD_TOP - PAD_BOTTOM

    def x(t: float) -> float:
        return PAD_LEFT + (t - start) / span * inner_w if end > start else PAD_LEFT + inner_w / 2

    def y(v: float) -> float:
        return PAD_TOP + (high - v) / (high - low) * inner_h

    corners = [(x(times[0]), y(values[0]))]
    for t, before, after in zip(times[1:], values[:-1], values[1:], strict=True):
        corners += [(x(t), y(before)), (x(t), y(after))]
    line = " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy in corners)
    colour = "#1a7f37" if values[-1] >= 0 else "#cf222e"
    zero = y(0.0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="{escape(title)}" class="equity-chart" id="equity-chart">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{PAD_LEFT}" y1="{zero:.1f}" x2="{WIDTH - PAD_RIGHT}" y2="{zero:.1f}" '
        'stroke="#8c959f" stroke-dasharray="4 4" stroke-width="1"/>',
        f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{line}"/>',
        f'<circle cx="{x(times[-1]):.1f}" cy="{y(values[-1]):.1f}" r="3" fill="{colour}"/>',
    ]
    for value in (high, low):
        parts.append(
            f'<text x="{PAD_LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end" '
            f'font-size="11" fill="#57606a">{escape(label(Decimal(repr(value))))}</text>'
        )
    parts.append(
        f'<text x="{PAD_LEFT}" y="{HEIGHT - 8}" font-size="11" fill="#57606a">'
        f"{escape(date(points[0]))}</text>"
    )
    parts.append(
        f'<text x="{WIDTH - PAD_RIGHT}" y="{HEIGHT - 8}" text-anchor="end" font-size="11" '
        f'fill="#57606a">{escape(date(points[-1]))}</text>'
    )
    if note:
        parts.append(
            f'<text x="{PAD_LEFT + inner_w / 2:.1f}" y="{PAD_TOP + inner_h / 2 - 8:.1f}" '
            f'text-anchor="middle" font-size="14" fill="#57606a" class="equity-note">'
            f"{escape(note)}</text>"
        )
    parts.append("</svg>")
    # Every text above went through escape(); the rest is numbers we formatted.
    return Markup("".join(parts))  # noqa: S704
