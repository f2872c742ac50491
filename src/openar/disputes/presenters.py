"""Disputes as the pages show them: formatted once in Python (the portal's and the desk's
templates only place the values)."""

from __future__ import annotations

import datetime
from typing import Any

from django.utils import timezone

from openar.core.money import format_money, quantize
from openar.disputes.models import Dispute

STATE_BADGES: dict[str, str] = {
    Dispute.State.OPEN: "badge--open",
    Dispute.State.IN_REVIEW: "badge--partial",
    Dispute.State.RESOLVED: "badge--paid",
    Dispute.State.WITHDRAWN: "",
}
OUTCOME_BADGES: dict[str, str] = {
    Dispute.Outcome.ACCEPTED: "badge--paid",
    Dispute.Outcome.PARTLY_ACCEPTED: "badge--partial",
    Dispute.Outcome.REJECTED: "badge--late",
}


def ageing(dispute: Dispute, now: datetime.datetime | None = None) -> dict[str, Any]:
    """Days open (until it ended), and the SLA: due in n days, due today, or n days overdue."""
    now = now or timezone.now()
    end = dispute.resolved_at or now
    days_open = max(0, (end - dispute.created_at).days)
    sla = ""
    overdue = False
    if dispute.is_open:
        left = dispute.due_at - now
        if left.total_seconds() < 0:
            overdue = True
            late = max(1, int(-left.total_seconds() // 86400))
            sla = f"{late} day{'s' if late != 1 else ''} overdue"
        elif left.days == 0:
            sla = "due today"
        else:
            sla = f"due in {left.days} day{'s' if left.days != 1 else ''}"
    return {"days_open": days_open, "sla": sla, "overdue": overdue}


def line_rows(dispute: Dispute) -> list[dict[str, Any]]:
    currency = dispute.currency
    return [
        {
            "id": line.pk,
            "description": line.invoice_line.description,
            "sku": line.invoice_line.sku,
            "line_total": format_money(line.invoice_line.total, currency),
            "reason": line.reason.label,
            "reason_code": line.reason.code,
            "amount": format_money(line.amount, currency),
            "amount_value": f"{quantize(line.amount, currency)}",
            "comment": line.comment,
            "accepted": format_money(line.accepted_amount, currency)
            if line.accepted_amount is not None
            else "",
        }
        for line in dispute.lines.all()
    ]


def dispute_view(dispute: Dispute, *, for_customer: bool) -> dict[str, Any]:
    """One dispute for a page: state, outcome, amounts, SLA, lines and files."""
    currency = dispute.currency
    return {
        "id": dispute.pk,
        "obj": dispute,
        "invoice": dispute.invoice.number,
        "invoice_id": dispute.invoice_id,
        "customer_id": dispute.customer_id,
        "state": dispute.state,
        "state_label": dispute.get_state_display(),
        "state_badge": STATE_BADGES.get(dispute.state, ""),
        "is_open": dispute.is_open,
        "outcome": dispute.outcome,
        "outcome_label": dispute.get_outcome_display() if dispute.outcome else "",
        "outcome_badge": OUTCOME_BADGES.get(dispute.outcome, ""),
        "total": format_money(dispute.disputed_total, currency),
        "accepted": format_money(dispute.accepted_amount, currency),
        "rejection_reason": dispute.rejection_reason,
        "credit_note": dispute.credit_note,
        "credit_amount": format_money(dispute.credit_note.amount, currency) if dispute.credit_note else "",
        "opened": dispute.created_at,
        "due": dispute.due_at,
        "resolved": dispute.resolved_at,
        "assigned": (dispute.assigned_to.get_full_name() or dispute.assigned_to.email)
        if dispute.assigned_to
        else "",
        "thread_id": dispute.thread_id,
        "lines": line_rows(dispute),
        "attachments": [
            {
                "id": a.document_id,
                "filename": a.document.filename,
                "size": a.document.size,
                "by_staff": a.by_staff,
                "added": a.created_at,
            }
            for a in dispute.attachments.all()
            if a.document.visible_to_customer or not for_customer
        ],
        **ageing(dispute),
    }
