"""``openar manage contract_verify <contract id> <file>``: does the file match the contract
as sent, or its signed copy? Exit status 0 when it matches, 1 when it does not."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_scopes import scope, scopes_disabled

from openar.contracts.models import Contract
from openar.contracts.pdf import CHUNK
from openar.contracts.services import contract_verify_stream


class Command(BaseCommand):
    help = "Check a file against a contract's SHA-256 (as sent) and its signed copy's."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("contract_id", type=int)
        parser.add_argument("file", type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        with scopes_disabled():
            contract = (
                Contract.objects.select_related("organization").filter(pk=options["contract_id"]).first()
            )
        if contract is None:
            raise CommandError(f"No contract {options['contract_id']}.")
        with scope(organization=contract.organization), path.open("rb") as handle:
            result = contract_verify_stream(contract, iter(lambda: handle.read(CHUNK), b""))
        self.stdout.write(f"{result.message}\nSHA-256 of the file: {result.sha256}")
        self.stdout.write(f"Contract as sent:     {contract.sha256}")
        if contract.signed_sha256:
            self.stdout.write(f"Signed copy:          {contract.signed_sha256}")
        if not result.matches:
            sys.exit(1)
