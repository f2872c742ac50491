"""Money: Decimal quantized half-up to the currency's minor unit; never a float."""

from __future__ import annotations

from decimal import Decimal

import pytest

from openar.core.money import MoneyError, exponent, format_money, quantize


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("1.005", "USD", "1.01"),
        ("1.004999", "USD", "1.00"),
        ("-1.005", "USD", "-1.01"),
        ("1000.5", "JPY", "1001"),
        ("999.49", "JPY", "999"),
        ("1.2345", "KWD", "1.235"),
        ("0.0005", "kwd", "0.001"),
        (7, "EUR", "7.00"),
    ],
)
def test_quantize_rounds_half_up_to_the_minor_unit(amount: str | int, currency: str, expected: str) -> None:
    result = quantize(amount, currency)
    assert result == Decimal(expected)
    assert str(result) == expected  # the exponent too, not only the value


@pytest.mark.parametrize("amount", [1.5, "abc", "NaN", "Infinity", None])
def test_quantize_refuses_what_is_not_an_amount(amount: object) -> None:
    with pytest.raises(MoneyError):
        quantize(amount, "USD")  # type: ignore[arg-type]


def test_exponents() -> None:
    assert [exponent(c) for c in ("USD", "JPY", "KWD", "jpy", "XXX")] == [2, 0, 3, 0, 2]


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("1234.5", "USD", "$1,234.50"),
        ("-12", "EUR", "-€12.00"),
        ("1209", "JPY", "¥1,209"),
        ("2.2984", "KWD", "2.298 KWD"),
    ],
)
def test_format_money(amount: str, currency: str, expected: str) -> None:
    assert format_money(Decimal(amount), currency) == expected
