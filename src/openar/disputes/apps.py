from django.apps import AppConfig


class DisputesConfig(AppConfig):
    name = "openar.disputes"
    label = "disputes"
    verbose_name = "Disputes"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from openar.disputes.signals import default_reasons_for_new_organization
        from openar.tenants.models import Organization

        # A new organization gets the default reason codes at once (those created before
        # get them the first time their reasons are read: ``reasons.dispute_reasons``).
        post_save.connect(
            default_reasons_for_new_organization, sender=Organization, dispatch_uid="disputes-default-reasons"
        )
