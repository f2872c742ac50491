from django.apps import AppConfig


class CommitmentsConfig(AppConfig):
    name = "openar.commitments"
    label = "commitments"
    verbose_name = "Promises and payment plans"

    def ready(self) -> None:
        from openar.payments.autopay import OUTCOME_HANDLERS

        # An installment charged to a saved method: its payment's outcome (declined, returned,
        # settled) comes back through the provider-event path to this handler.
        OUTCOME_HANDLERS["installment-"] = "openar.commitments.services.installment_outcome"
