"""Money for people: currency symbol, thousands separators, sensible rounding (used by every
stage that writes a sentence with an amount, and by the report)."""

from __future__ import annotations

SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}


def money(value: float, currency: str = "USD") -> str:
    """``$1.23M``-style money for people: symbol, thousands separators, sensible rounding."""
    sym = SYMBOLS.get(currency, currency + " ")
    a = abs(value)
    sign = "-" if value < 0 else ""
    if a >= 1e9:
        return f"{sign}{sym}{a / 1e9:,.2f}B"
    if a >= 1e6:
        return f"{sign}{sym}{a / 1e6:,.2f}M"
    if a >= 1e4:
        return f"{sign}{sym}{a / 1e3:,.0f}k"
    if a >= 100:
        return f"{sign}{sym}{a:,.0f}"
    return f"{sign}{sym}{a:,.2f}"
