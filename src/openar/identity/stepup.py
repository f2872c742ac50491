"""Step-up for narrow (magic-link) sessions: before a sensitive change, prove control of the
contact's mailbox again with an emailed one-time code (where the policy allows), or sign in
fully with a password and second factor.

The code is 6 digits, kept only as a salted hash in the session, valid 10 minutes, and
refused after 5 wrong tries; a successful step-up lasts 15 minutes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from django.contrib.sessions.backends.base import SessionBase
from django.core.mail import send_mail
from django.db import transaction

from openar.core.audit import log_event
from openar.customers.models import Contact

CODE_KEY = "openar_step_up_code"
DONE_KEY = "openar_step_up_at"
CODE_TTL = 600
CODE_TRIES = 5
STEP_UP_TTL = 900


def _digest(code: str, salt: str) -> str:
    return hashlib.sha256(f"{salt}:{code}".encode()).hexdigest()


def step_up_fresh(session: SessionBase, contact: Contact, now: float | None = None) -> bool:
    """Has this contact proved control of their mailbox in this session, recently?"""
    done = session.get(DONE_KEY)
    if not isinstance(done, dict) or done.get("contact") != contact.pk:
        return False
    at = done.get("at")
    return isinstance(at, int | float) and (now or time.time()) - at < STEP_UP_TTL


def step_up_send_code(*, session: SessionBase, contact: Contact, ip: str | None = None) -> None:
    """Email a fresh code to the contact (replacing any earlier one)."""
    code = f"{secrets.randbelow(1_000_000):06d}"
    salt = secrets.token_hex(8)
    session[CODE_KEY] = {
        "digest": _digest(code, salt),
        "salt": salt,
        "at": time.time(),
        "tries": 0,
        "contact": contact.pk,
    }
    organization = contact.customer.organization
    with transaction.atomic():
        log_event("openar.step_up.code_sent", organization=organization, obj=contact, ip=ip)
        transaction.on_commit(
            lambda: send_mail(
                f"Your {organization.name} confirmation code: {code}",
                f"Hello {contact.name},\n\nYour confirmation code is {code}. It works for 10 minutes.\n"
                "If you did not ask for it, someone may have your sign-in link: tell us.\n\n"
                f"{organization.name}",
                None,
                [contact.email],
            )
        )


def step_up_check_code(*, session: SessionBase, contact: Contact, code: str, ip: str | None = None) -> str:
    """ "ok", "wrong", "expired" or "locked"; "ok" marks the session stepped up."""
    pending = session.get(CODE_KEY)
    organization = contact.customer.organization
    if not isinstance(pending, dict) or pending.get("contact") != contact.pk:
        return "expired"
    if time.time() - pending["at"] > CODE_TTL:
        session.pop(CODE_KEY, None)
        return "expired"
    if pending["tries"] >= CODE_TRIES:
        return "locked"
    if hmac.compare_digest(pending["digest"], _digest(code.strip(), pending["salt"])):
        session.pop(CODE_KEY, None)
        session[DONE_KEY] = {"contact": contact.pk, "at": time.time()}
        log_event("openar.step_up.passed", organization=organization, obj=contact, ip=ip)
        return "ok"
    pending["tries"] += 1
    session[CODE_KEY] = pending
    log_event(
        "openar.step_up.failed",
        organization=organization,
        obj=contact,
        ip=ip,
        data={"tries": pending["tries"]},
    )
    return "locked" if pending["tries"] >= CODE_TRIES else "wrong"
