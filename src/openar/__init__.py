"""OpenAR: an open-source accounts-receivable portal."""

__version__ = "0.1.0"
