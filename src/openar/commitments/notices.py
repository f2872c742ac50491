"""What promises and plans tell the customer: plain emails through the Message outbox
(stored whole, sent once the transaction commits)."""

from __future__ import annotations

import datetime

from openar.notifications.notices import PORTAL_LINK, recipient, tell_customer

__all__ = ["PORTAL_LINK", "day_text", "recipient", "tell_customer"]


def day_text(day: datetime.date) -> str:
    """A date as the messages and the consent text write it: "15 July 2025"."""
    return f"{day.day} {day:%B %Y}"
