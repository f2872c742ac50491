"""Tasks of the payments app (Django's task API; ``openar worker`` runs them)."""

from __future__ import annotations

from django_tasks import task


@task()
def send_receipt(payment_id: int) -> None:
    """The receipt of a payment that went through: its PDF, and the email that carries it."""
    from openar.payments.receipts import receipt_send

    receipt_send(payment_id=payment_id)
