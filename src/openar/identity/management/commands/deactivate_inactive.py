"""``openar manage deactivate_inactive``: the daily sweep of inactive users (run it from cron
or a systemd timer). Prints how many users and memberships it deactivated."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from openar.identity.services import deactivate_inactive_users


class Command(BaseCommand):
    help = (
        "Deactivate users who have not signed in for longer than their organization's security "
        "policy allows (inactive_days; 0 never). Meant to run once a day."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        sweep = deactivate_inactive_users(timezone.now())
        users = "user" if sweep.users == 1 else "users"
        memberships = "membership" if sweep.memberships == 1 else "memberships"
        self.stdout.write(
            f"Deactivated {sweep.users} inactive {users} and {sweep.memberships} {memberships} "
            "(of people still active in another organization)."
        )
