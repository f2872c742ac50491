"""Money: Decimal quantized half-up to the currency's minor unit; never a float."""

from __future__ import annotations

from decimal import Decimal

import pytest

from openar.core.money import MoneyError, exponent, format_money, parse_amount, quantize


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


# --- parse_amount: what people type ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "currency", "expected"),
    [
        ("1,234.50", "USD", "1234.50"),
        ("1234.5", "USD", "1234.50"),
        ("$1,234.50", "USD", "1234.50"),
        ("  $ 12.30 ", "USD", "12.30"),
        ("USD 12", "USD", "12.00"),
        ("usd12", "USD", "12.00"),
        ("12,345,678.9", "USD", "12345678.90"),
        (".75", "USD", "0.75"),
        ("0", "USD", "0.00"),
        ("$12", "CAD", "12.00"),  # a bare dollar sign for any dollar
        ("CA$12", "CAD", "12.00"),
        ("€1,000", "EUR", "1000.00"),
        ("1,200", "JPY", "1200"),
        ("1,200.000 KWD", "KWD", "1200.000"),  # as format_money writes it
        ("999999999999999", "USD", "999999999999999.00"),
    ],
)
def test_parse_amount_reads_amounts_the_english_way(text: str, currency: str, expected: str) -> None:
    result = parse_amount(text, currency)
    assert result == Decimal(expected)
    assert str(result) == expected  # in the currency's minor unit


COMMAS = "Use a point before the decimals, and commas only between thousands, like 1,234.50."


@pytest.mark.parametrize(
    ("text", "currency", "error"),
    [
        ("", "USD", "Enter an amount."),
        ("   ", "USD", "Enter an amount."),
        ("12,50", "USD", COMMAS),
        ("1,23", "USD", COMMAS),
        ("1,2345", "USD", COMMAS),
        ("1.000,00", "EUR", COMMAS),
        ("-5", "USD", "Enter the amount without a minus sign."),
        ("-$5", "USD", "Enter the amount without a minus sign."),
        ("$-5", "USD", "Enter the amount without a minus sign."),
        ("+5", "USD", "Enter the amount in digits, like 1,234.50."),
        ("NaN", "USD", "Enter the amount in digits, like 1,234.50."),
        ("nan", "USD", "Enter the amount in digits, like 1,234.50."),
        ("Infinity", "USD", "Enter the amount in digits, like 1,234.50."),
        ("1e2", "USD", "Enter the amount in digits, like 1,234.50."),
        ("1E+2", "USD", "Enter the amount in digits, like 1,234.50."),
        ("1 234", "USD", "Enter the amount in digits, like 1,234.50."),
        ("12.", "USD", "Enter the amount in digits, like 1,234.50."),
        ("１２", "USD", "Enter the amount in digits, like 1,234.50."),  # fullwidth digits
        ("$", "USD", "Enter the amount in digits, like 1,234.50."),
        ("1" * 41, "USD", "Enter the amount in digits, like 1,234.50."),
        ("10.005", "USD", "Enter at most 2 decimals for USD."),
        ("12.5", "JPY", "JPY amounts have no decimals."),
        ("1.2345", "KWD", "Enter at most 3 decimals for KWD."),
        ("€12", "USD", "Enter the amount in USD."),
        ("12 EUR", "USD", "Enter the amount in USD."),
        ("$12 USD", "USD", "Enter the amount in USD."),
        ("9999999999999999", "USD", "That amount is too large."),
    ],
)
def test_parse_amount_refuses_what_could_be_misread(text: str, currency: str, error: str) -> None:
    with pytest.raises(ValueError) as refused:
        parse_amount(text, currency)
    assert str(refused.value) == error
    assert isinstance(refused.value, MoneyError)


def test_the_desk_reads_amounts_with_the_same_rule() -> None:
    """The desk's AmountField answers what ``parse_amount`` answers, message included."""
    from django import forms

    from openar.desk.forms import AmountField

    field = AmountField(currency="USD")
    assert field.clean("$1,234.50") == Decimal("1234.50")
    for text in ("12,50", "-5", "10.005", "1e2"):
        with pytest.raises(forms.ValidationError) as refused:
            field.clean(text)
        with pytest.raises(ValueError) as parsed:
            parse_amount(text, "USD")
        assert refused.value.messages == [str(parsed.value)]
