"""Money: Decimal amounts quantized to their currency's minor unit. Never float."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.db import models

# ISO 4217 minor units for currencies whose exponent is not 2.
_EXPONENTS: dict[str, int] = {
    "BHD": 3,
    "BIF": 0,
    "CLP": 0,
    "DJF": 0,
    "GNF": 0,
    "IQD": 3,
    "ISK": 0,
    "JOD": 3,
    "JPY": 0,
    "KMF": 0,
    "KRW": 0,
    "KWD": 3,
    "LYD": 3,
    "OMR": 3,
    "PYG": 0,
    "RWF": 0,
    "TND": 3,
    "UGX": 0,
    "UYI": 0,
    "VND": 0,
    "VUV": 0,
    "XAF": 0,
    "XOF": 0,
    "XPF": 0,
}
CURRENCY_CHOICES = [
    ("USD", "US dollar"),
    ("CAD", "Canadian dollar"),
    ("EUR", "Euro"),
    ("GBP", "Pound sterling"),
    ("CHF", "Swiss franc"),
    ("AUD", "Australian dollar"),
    ("JPY", "Japanese yen"),
    ("MXN", "Mexican peso"),
    ("KWD", "Kuwaiti dinar"),
]
_SYMBOLS = {"USD": "$", "CAD": "CA$", "EUR": "€", "GBP": "£", "AUD": "A$", "JPY": "¥"}

ZERO = Decimal("0")


class MoneyError(ValueError):
    """An amount that is not a valid amount of money in its currency."""


def exponent(currency: str) -> int:
    return _EXPONENTS.get(currency.upper(), 2)


def quantize(amount: Decimal | int | str, currency: str) -> Decimal:
    """The amount rounded half-up to the currency's minor unit."""
    if isinstance(amount, float):
        raise MoneyError("money is never a float; pass a Decimal or a string")
    try:
        value = Decimal(amount)
    except (InvalidOperation, TypeError) as exc:
        raise MoneyError(f"{amount!r} is not an amount") from exc
    if not value.is_finite():
        raise MoneyError(f"{amount!r} is not an amount")
    return value.quantize(Decimal(1).scaleb(-exponent(currency)), rounding=ROUND_HALF_UP)


def format_money(amount: Decimal | None, currency: str, language: str = "en") -> str:
    """A human-readable amount: "$1,234.50", "-€12.00", "1,200 KWD"-style for the rest; in
    French "1 234,50 $" (a narrow no-break space between thousands, the symbol after)."""
    if amount is None:
        return ""
    value = quantize(amount, currency)
    places = exponent(currency)
    text = f"{abs(value):,.{places}f}"
    sign = "-" if value < 0 else ""
    symbol = _SYMBOLS.get(currency)
    if language == "fr":
        text = text.replace(",", "\u202f").replace(".", ",")
        return f"{sign}{text}\u00a0{symbol or currency}"
    if symbol:
        return f"{sign}{symbol}{text}"
    return f"{sign}{text} {currency}"


class MoneyField(models.DecimalField):
    """Amounts stored with four decimal places (enough for every ISO currency), quantized
    to the currency's minor unit by the services that write them."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("max_digits", 19)
        kwargs.setdefault("decimal_places", 4)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        kwargs.pop("max_digits", None)
        kwargs.pop("decimal_places", None)
        return name, path, args, kwargs
