"""Email through Django's email backend: SMTP in production, or any provider django-anymail
supports (set ``OPENAR_EMAIL_BACKEND``). One message, a plain-text and an HTML part, its
attachments, a Reply-To that routes replies to the message's thread."""

from __future__ import annotations

import contextlib
import smtplib
from concurrent.futures import ThreadPoolExecutor
from email.utils import make_msgid

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.base import BaseEmailBackend

from openar.notifications.channels.base import Outbound, PermanentFailure, Sent, TemporaryFailure
from openar.notifications.channels.registry import register


class SMTPChannel:
    name = "smtp"

    def send(self, outbound: Outbound) -> Sent:
        return self._send(outbound, connection=None)

    def send_many(self, outbounds: list[Outbound]) -> list[Sent | Exception]:
        """Many messages over a few connections to the mail server at once (SMTP waits for
        an answer to every command: parallel connections overlap those waits); each message
        gets its own answer, in order."""
        lanes = max(1, min(int(getattr(settings, "OPENAR_SMTP_CONNECTIONS", 4)), len(outbounds)))
        if lanes == 1:
            return self._send_over_one_connection(outbounds)
        chunks = [outbounds[lane::lanes] for lane in range(lanes)]
        with ThreadPoolExecutor(max_workers=lanes, thread_name_prefix="smtp") as pool:
            answers = list(pool.map(self._send_over_one_connection, chunks))
        ordered: list[Sent | Exception] = [TemporaryFailure("not sent")] * len(outbounds)
        for lane, lane_answers in enumerate(answers):
            for position, answer in enumerate(lane_answers):
                ordered[lane + position * lanes] = answer
        return ordered

    def _send_over_one_connection(self, outbounds: list[Outbound]) -> list[Sent | Exception]:
        """Messages over one connection (opened once, reopened once if it drops)."""
        connection = get_connection()
        answers: list[Sent | Exception] = []
        try:
            try:
                connection.open()
            except (smtplib.SMTPException, OSError) as exc:
                failure = TemporaryFailure(f"The mail server could not be reached ({type(exc).__name__}).")
                return [failure] * len(outbounds)
            for outbound in outbounds:
                try:
                    answers.append(self._send(outbound, connection=connection))
                except TemporaryFailure as exc:
                    answers.append(exc)
                    if isinstance(exc.__cause__, smtplib.SMTPServerDisconnected):
                        connection.close()
                        connection.open()
                except Exception as exc:
                    answers.append(exc)
        finally:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                connection.close()
        return answers

    def _send(self, outbound: Outbound, *, connection: BaseEmailBackend | None) -> Sent:
        domain = settings.OPENAR_REPLY_DOMAIN or "openar.invalid"
        message_id = make_msgid(idstring=f"m{outbound.message_id}", domain=domain)
        message = EmailMultiAlternatives(
            subject=outbound.subject,
            body=outbound.text,
            from_email=outbound.from_address or None,
            to=[outbound.to],
            reply_to=[outbound.reply_to] if outbound.reply_to else None,
            headers={"Message-ID": message_id, **outbound.headers},
            connection=connection,
        )
        if outbound.html:
            message.attach_alternative(outbound.html, "text/html")
        for attachment in outbound.attachments:
            message.attach(attachment.filename, attachment.content, attachment.content_type)
        try:
            message.send()
        except smtplib.SMTPRecipientsRefused as exc:
            # A 4xx answer to RCPT is "not now" (greylisting, a full mailbox): nothing is wrong
            # with the address, so try again later and do not flag it.
            if any(400 <= code < 500 for code, _ in exc.recipients.values()):
                raise TemporaryFailure(f"The mail server deferred the address: {_first_reason(exc)}") from exc
            raise PermanentFailure(f"The mail server refused the address: {_first_reason(exc)}") from exc
        except smtplib.SMTPResponseException as exc:
            if 500 <= exc.smtp_code < 600 and exc.smtp_code != 552:
                raise PermanentFailure(
                    f"The mail server refused the message ({exc.smtp_code}).", address_problem=False
                ) from exc
            raise TemporaryFailure(f"The mail server answered {exc.smtp_code}; trying again later.") from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise TemporaryFailure(f"The mail server could not be reached ({type(exc).__name__}).") from exc
        return Sent(provider_id=message_id)


def _first_reason(exc: smtplib.SMTPRecipientsRefused) -> str:
    for code, reason in exc.recipients.values():
        text = reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
        return f"{code} {text}"
    return "refused"


register("smtp")(SMTPChannel)
