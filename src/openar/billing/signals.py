"""Issued invoices and credit notes are never deleted, not even by a queryset delete."""

from __future__ import annotations

from typing import Any

from django.db.models import ProtectedError
from django.db.models.signals import pre_delete
from django.dispatch import receiver

from openar.billing.models import CreditNote, Invoice, InvoiceLine


@receiver(pre_delete, sender=Invoice)
@receiver(pre_delete, sender=InvoiceLine)
@receiver(pre_delete, sender=CreditNote)
def refuse_deleting_issued_documents(sender: type, instance: Any, **kwargs: Any) -> None:
    raise ProtectedError(
        f"{sender.__name__} {instance} is issued and cannot be deleted; issue a credit note instead.",
        {instance},
    )
