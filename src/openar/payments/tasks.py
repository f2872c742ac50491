"""Tasks of the payments app (Django's task API; ``openar worker`` runs them)."""

from __future__ import annotations

from django_tasks import task


@task()
def send_receipts(payment_ids: list[int]) -> None:
    """The receipts of payments that went through together (a batch of provider events):
    each one's PDF, and the email that carries it. One receipt that cannot be sent never
    stops the others (``receipt_send`` logs it and goes on)."""
    from openar.payments.receipts import receipt_send

    for payment_id in payment_ids:
        receipt_send(payment_id=payment_id)


@task()
def send_receipt(payment_id: int) -> None:
    """The receipt of one payment (tasks queued before receipts were queued by batch)."""
    send_receipts.call([payment_id])
