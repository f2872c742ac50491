"""Tasks of the messages app (Django's task API; ``openar worker`` runs them)."""

from __future__ import annotations

from django_tasks import task

from openar.notifications.services import message_send, messages_send


@task()
def send_message(message_id: int) -> str:
    """Send one message; safe to run twice or on several workers at once (sending claims it)."""
    return message_send(message_id=message_id)


@task()
def send_messages(message_ids: list[int]) -> dict[str, str]:
    """Send a batch of messages (the periodic dispatch and the reminder engine queue these)."""
    return {str(pk): state for pk, state in messages_send(message_ids).items()}
