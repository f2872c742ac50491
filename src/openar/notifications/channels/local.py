"""The demo's channels: nothing leaves the machine. Email and SMS are kept in the desk's
outbox (``/desk/outbox/``), where a person can open them and follow their links; portal
messages are delivered by being stored."""

from __future__ import annotations

from openar.notifications.channels.base import Outbound, Sent
from openar.notifications.channels.registry import register


class LocalOutbox:
    name = "local"

    def send(self, outbound: Outbound) -> Sent:
        return Sent(provider_id=f"local-{outbound.message_id}", delivered=True)


class PortalChannel:
    """Messages to or from the portal: the customer reads them there."""

    name = "portal"

    def send(self, outbound: Outbound) -> Sent:
        return Sent(provider_id=f"portal-{outbound.message_id}", delivered=True)


register("local")(LocalOutbox)
register("portal")(PortalChannel)
