"""Money: Decimal amounts quantized to their currency's minor unit. Never float."""

from __future__ import annotations

import re
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


# An amount as people type it in English: digits with commas between groups of three (or
# none), a decimal point, and a currency sign or code before it or a code after it.
_TYPED = re.compile(
    r"(?P<lead>[+-])?\s*(?P<before>[^\d\s.,+-]{1,3})?\s*(?P<sign>[+-])?\s*"
    r"(?P<whole>[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)?(?:\.(?P<fraction>[0-9]+))?"
    r"\s*(?P<after>[A-Za-z]{3})?"
)
MAX_TYPED_DIGITS = 15  # whole units: what MoneyField keeps (19 digits, 4 of them decimals)


def _signs_of(currency: str) -> set[str]:
    """What may stand before an amount in ``currency``: its code, its symbol, and a bare
    "$" for the dollars whose symbol ends with one (CA$, A$: people in Canada type "$")."""
    signs = {currency}
    symbol = _SYMBOLS.get(currency)
    if symbol:
        signs.add(symbol.upper())
        if symbol.endswith("$"):
            signs.add("$")
    return signs


def parse_amount(text: str, currency: str) -> Decimal:
    """An amount of ``currency`` typed by a person, as a Decimal in the currency's minor unit;
    raises ``MoneyError`` (a ValueError) with a message to show them.

    The product speaks English, so an amount is read the English way, and anything that
    could be read two ways is refused rather than guessed (a wrong guess moves money):

    - digits, with a "." before the decimals: "1234.5", "0.75", ".75";
    - commas only between groups of three digits: "1,234.50" is taken, "12,50" (a decimal
      comma elsewhere, or a typo for 1,250?) and "1,23" are refused;
    - the currency's own sign or code may come first ("$1,234.50", "USD 1234.50"), or its
      code last ("1,200.000 KWD", as ``format_money`` writes it); another currency's is
      refused;
    - at most as many decimals as the currency has: "10.005" USD and "12.5" JPY are
      refused, not rounded;
    - no sign, exponent, NaN or Infinity, no spaces between digits, at most 15 digits
      before the point.

    Zero is a valid amount here; whether it is a valid payment is for the caller to say.
    """
    code = currency.upper()
    places = exponent(code)
    example = "1,234" if places == 0 else "1,234." + "5".ljust(places, "0")
    typed = (text or "").strip()
    if not typed:
        raise MoneyError("Enter an amount.")
    match = _TYPED.fullmatch(typed) if len(typed) <= 40 else None
    if match is None or not (match["whole"] or match["fraction"]):
        if re.fullmatch(r"[^\d]{0,3}\s*[0-9][0-9,.]*\s*[A-Za-z]{0,3}", typed) and "," in typed:
            raise MoneyError(
                f"Use a point before the decimals, and commas only between thousands, like {example}."
            )
        raise MoneyError(f"Enter the amount in digits, like {example}.")
    if "-" in (match["lead"], match["sign"]):
        raise MoneyError("Enter the amount without a minus sign.")
    if "+" in (match["lead"], match["sign"]):
        raise MoneyError(f"Enter the amount in digits, like {example}.")
    before, after = (match["before"] or "").upper(), (match["after"] or "").upper()
    if (before and after) or (before and before not in _signs_of(code)) or (after and after != code):
        raise MoneyError(f"Enter the amount in {code}.")
    whole = (match["whole"] or "0").replace(",", "")
    fraction = match["fraction"] or ""
    if len(whole.lstrip("0")) > MAX_TYPED_DIGITS:
        raise MoneyError("That amount is too large.")
    if len(fraction) > places:
        if places == 0:
            raise MoneyError(f"{code} amounts have no decimals.")
        raise MoneyError(f"Enter at most {places} decimals for {code}.")
    return quantize(Decimal(f"{whole}.{fraction}" if fraction else whole), code)


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
