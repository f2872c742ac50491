"""The services of promises and payment plans: what front doors (portal, pay page, desk,
API) and the periodic jobs call. Each is documented where it is written:

- ``openar.commitments.policy``: ``commitment_policy``;
- ``openar.commitments.promises``: ``promise_create``, ``promise_cancel``,
  ``promise_progress``, ``promises_run`` (periodic), ``promise_kept_rate``;
- ``openar.commitments.plans``: ``plan_quote`` (→ ``Quote``), ``plan_terms``,
  ``plan_create``, ``plan_propose``, ``plan_approve``, ``plan_change``, ``plan_cancel``,
  ``plan_progress``, ``plan_health``;
- ``openar.commitments.installments``: ``installments_run`` (periodic) and
  ``installment_outcome`` (the handler of charges to a saved method, registered in
  ``autopay.OUTCOME_HANDLERS`` by the app config).

Every bad input raises ``openar.core.errors.ServiceError`` with ``field`` set to the input
it is about and a message the customer can read.
"""

from __future__ import annotations

from openar.commitments.installments import installment_outcome, installments_run
from openar.commitments.plans import (
    Quote,
    Scheduled,
    plan_approve,
    plan_cancel,
    plan_change,
    plan_create,
    plan_health,
    plan_progress,
    plan_propose,
    plan_quote,
    plan_terms,
)
from openar.commitments.policy import commitment_policy
from openar.commitments.promises import (
    promise_cancel,
    promise_create,
    promise_kept_rate,
    promise_progress,
    promises_run,
)

__all__ = [
    "Quote",
    "Scheduled",
    "commitment_policy",
    "installment_outcome",
    "installments_run",
    "plan_approve",
    "plan_cancel",
    "plan_change",
    "plan_create",
    "plan_health",
    "plan_progress",
    "plan_propose",
    "plan_quote",
    "plan_terms",
    "promise_cancel",
    "promise_create",
    "promise_kept_rate",
    "promise_progress",
    "promises_run",
]
