"""Portal invitations: the desk's invite form and ``membership_invite`` (new or existing
users, duplicates, the policy's seat limits for customers and creditor clients), and the
seat limit under concurrent invitations on PostgreSQL."""

from __future__ import annotations

import pytest
from django.core import mail
from django_scopes import scope, scopes_disabled
from pytest_django.fixtures import DjangoCaptureOnCommitCallbacks

from factories import Users, in_threads, make_user, signed_in, text_of
from openar.core.errors import ServiceError
from openar.core.models import AuditEvent
from openar.customers.models import Customer
from openar.identity.models import User
from openar.tenants.models import Creditor, Membership, Organization, Role
from openar.tenants.services import membership_invite, policy_update

LIMIT_REACHED = (
    "{name} already has {limit} {users}, the most your organization's policy allows. "
    "Remove a user first, or ask an admin to raise the limit."
)


# --- helpers ------------------------------------------------------------------------------------


def invite_url(customer: Customer) -> str:
    return f"/desk/customers/{customer.pk}/invite/"


def set_policy(organization: Organization, **changes: int) -> None:
    policy_update(organization=organization, actor=None, changes=changes)


def members_of(
    *, customer: Customer | None = None, creditor: Creditor | None = None
) -> list[tuple[str, str]]:
    """(email, role) of the memberships bound to ``customer`` or ``creditor``, oldest first."""
    with scopes_disabled():
        query = (
            Membership.objects.filter(customer=customer)
            if customer
            else Membership.objects.filter(creditor=creditor)
        )
        return list(query.order_by("pk").values_list("user__email", "role"))


def emails() -> list[str]:
    return sorted(User.objects.values_list("email", flat=True))


def invited_events() -> list[AuditEvent]:
    with scopes_disabled():
        return list(AuditEvent.objects.filter(action="openar.membership.invited").order_by("pk"))


def invite(
    organization: Organization,
    email: str,
    *,
    customer: Customer | None = None,
    creditor: Creditor | None = None,
    full_name: str = "",
) -> Membership:
    with scope(organization=organization):
        return membership_invite(
            organization=organization,
            email=email,
            full_name=full_name,
            role=Role.CUSTOMER if customer is not None else Role.CREDITOR,
            customer=customer,
            creditor=creditor,
            actor=None,
        ).membership


# --- through the desk ---------------------------------------------------------------------------


def test_an_invitation_creates_a_user_and_a_customer_membership(
    users: Users,
    supplier: Organization,
    customer_2: Customer,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    client = signed_in(users.collector)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            invite_url(customer_2), {"email": "pat@anvil.example", "full_name": "  Pat Smith "}
        )

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    page = text_of(response.content)
    assert "Invitation sent To pat@anvil.example ." in page
    assert "They now have access to the account of Anvil Works." in page
    assert "The email has a link to choose a password." in page
    user = User.objects.get(email="pat@anvil.example")
    assert (user.full_name, user.has_usable_password(), user.is_active) == ("Pat Smith", False, True)
    with scopes_disabled():
        membership = Membership.objects.get(user=user)
    assert (
        membership.organization_id,
        membership.role,
        membership.customer_id,
        membership.creditor_id,
        membership.is_active,
    ) == (supplier.pk, Role.CUSTOMER, customer_2.pk, None, True)
    (event,) = invited_events()
    assert (event.organization_id, event.actor_id, event.object_type, event.object_id) == (
        supplier.pk,
        users.collector.pk,
        "tenants.membership",
        str(membership.pk),
    )
    assert event.data == {
        "role": "customer",
        "customer": customer_2.pk,
        "creditor": None,
        "new_user": True,
        "first_password": "set_password",
    }
    (email,) = mail.outbox
    assert (email.to, email.subject) == (
        ["pat@anvil.example"],
        "Acme Supplies invited you to their accounts portal",
    )
    assert "access to the account of Anvil Works" in email.body
    assert "/accounts/password/reset/key/" in email.body
    # The invited person's own sign-in opens the portal of that customer.
    assert "Hello, Anvil Works" in text_of(signed_in(user).get("/portal/").content)


def test_an_existing_user_is_reused(users: Users, supplier: Organization, customer_2: Customer) -> None:
    existing = make_user("pat@example.com", full_name="Pat Existing")
    before = emails()

    response = signed_in(users.collector).post(
        invite_url(customer_2), {"email": "PAT@Example.com", "full_name": "Someone Else"}
    )

    assert response.status_code == 200
    assert "They already have a password" in text_of(response.content)
    assert emails() == before
    existing.refresh_from_db()
    assert existing.full_name == "Pat Existing"
    assert members_of(customer=customer_2) == [("pat@example.com", "customer")]


def test_inviting_the_same_person_twice_is_refused_clearly(
    users: Users, supplier: Organization, customer_2: Customer
) -> None:
    client = signed_in(users.collector)
    client.post(invite_url(customer_2), {"email": "pat@anvil.example"})
    before = emails()

    response = client.post(invite_url(customer_2), {"email": "Pat@Anvil.example"})

    assert response.status_code == 302
    assert "pat@anvil.example already has this access." in text_of(client.get(response["Location"]).content)
    assert members_of(customer=customer_2) == [("pat@anvil.example", "customer")]
    assert emails() == before
    assert len(invited_events()) == 1


def test_the_seat_limit_refuses_the_invitation_after_the_last_seat(
    users: Users, supplier: Organization, customer: Customer, customer_2: Customer
) -> None:
    """Bolt Hardware already has a user (users.customer): seats are counted per customer."""
    set_policy(supplier, seats_per_customer=2)
    client = signed_in(users.collector)
    first = client.post(invite_url(customer_2), {"email": "one@anvil.example"})
    second = client.post(invite_url(customer_2), {"email": "two@anvil.example"})
    before = emails()

    third = client.post(invite_url(customer_2), {"email": "three@anvil.example", "full_name": "Three"})

    assert (first.status_code, second.status_code, third.status_code) == (200, 200, 302)
    assert LIMIT_REACHED.format(name="Anvil Works", limit=2, users="users") in text_of(
        client.get(third["Location"]).content
    )
    assert emails() == before
    assert not User.objects.filter(email="three@anvil.example").exists()
    assert members_of(customer=customer_2) == [
        ("one@anvil.example", "customer"),
        ("two@anvil.example", "customer"),
    ]
    assert [event.data["customer"] for event in invited_events()] == [customer_2.pk, customer_2.pk]


@pytest.mark.parametrize("role", ["manager", "customer", "creditor"])
def test_without_desk_collect_nobody_invites(users: Users, customer_2: Customer, role: str) -> None:
    before = emails()

    response = signed_in(getattr(users, role)).post(invite_url(customer_2), {"email": "pat@anvil.example"})

    assert response.status_code == 403
    assert emails() == before
    assert members_of(customer=customer_2) == []
    assert invited_events() == []


def test_another_organizations_customer_is_not_found(users: Users, other_customer: Customer) -> None:
    before = emails()

    response = signed_in(users.collector).post(invite_url(other_customer), {"email": "pat@zeta.example"})

    assert response.status_code == 404
    assert emails() == before
    assert members_of(customer=other_customer) == []
    assert invited_events() == []


@pytest.mark.parametrize("email", ["", "not-an-address", "pat@"])
def test_an_invalid_address_is_refused_with_a_message(users: Users, customer_2: Customer, email: str) -> None:
    client = signed_in(users.collector)
    before = emails()

    response = client.post(invite_url(customer_2), {"email": email})

    assert response.status_code == 302
    assert "Enter the email address of the person to invite." in text_of(
        client.get(response["Location"]).content
    )
    assert emails() == before
    assert members_of(customer=customer_2) == []
    assert invited_events() == []


# --- the service: seat limits -------------------------------------------------------------------


def test_one_seat_is_one_user(supplier: Organization, customer_2: Customer) -> None:
    set_policy(supplier, seats_per_customer=1)
    invite(supplier, "one@anvil.example", customer=customer_2)

    with pytest.raises(ServiceError) as refused:
        invite(supplier, "two@anvil.example", customer=customer_2)

    assert refused.value.message == LIMIT_REACHED.format(name="Anvil Works", limit=1, users="user")
    assert (refused.value.code, refused.value.field) == ("seat_limit", "email")
    assert not User.objects.filter(email="two@anvil.example").exists()


def test_an_inactive_membership_frees_its_seat(supplier: Organization, customer_2: Customer) -> None:
    set_policy(supplier, seats_per_customer=1)
    gone = invite(supplier, "gone@anvil.example", customer=customer_2)
    with scope(organization=supplier):
        Membership.objects.filter(pk=gone.pk).update(is_active=False)

    invite(supplier, "new@anvil.example", customer=customer_2)

    assert members_of(customer=customer_2) == [
        ("gone@anvil.example", "customer"),
        ("new@anvil.example", "customer"),
    ]


def test_zero_customer_seats_means_no_limit(supplier: Organization, customer_2: Customer) -> None:
    set_policy(supplier, seats_per_customer=0)

    for n in range(7):
        invite(supplier, f"person{n}@anvil.example", customer=customer_2)

    assert len(members_of(customer=customer_2)) == 7
    assert len(invited_events()) == 7


def test_creditor_seats_are_limited_by_their_own_setting(
    users: Users, agency: Organization, agency_clients: tuple[Creditor, Creditor]
) -> None:
    """City Water already has a user (users.creditor); Mercy Hospital has none. The customer
    seat limit does not apply to creditor clients."""
    city_water, mercy = agency_clients
    set_policy(agency, seats_per_creditor=2, seats_per_customer=1)
    invite(agency, "a@mercy.example", creditor=mercy)
    invite(agency, "b@mercy.example", creditor=mercy)
    invite(agency, "a@citywater.example", creditor=city_water)
    before = emails()

    with pytest.raises(ServiceError) as mercy_full:
        invite(agency, "c@mercy.example", creditor=mercy)
    with pytest.raises(ServiceError) as city_water_full:
        invite(agency, "b@citywater.example", creditor=city_water)

    assert mercy_full.value.message == LIMIT_REACHED.format(name="Mercy Hospital", limit=2, users="users")
    assert city_water_full.value.message == LIMIT_REACHED.format(
        name="City Water Utility", limit=2, users="users"
    )
    assert (mercy_full.value.code, city_water_full.value.code) == ("seat_limit", "seat_limit")
    assert emails() == before
    assert members_of(creditor=mercy) == [("a@mercy.example", "creditor"), ("b@mercy.example", "creditor")]
    assert members_of(creditor=city_water) == [
        ("client@citywater.example", "creditor"),
        ("a@citywater.example", "creditor"),
    ]
    assert [
        (event.data["role"], event.data["customer"], event.data["creditor"]) for event in invited_events()
    ] == [("creditor", None, mercy.pk), ("creditor", None, mercy.pk), ("creditor", None, city_water.pk)]


def test_zero_creditor_seats_means_no_limit(
    agency: Organization, agency_clients: tuple[Creditor, Creditor]
) -> None:
    mercy = agency_clients[1]
    set_policy(agency, seats_per_creditor=0)

    for n in range(6):
        invite(agency, f"person{n}@mercy.example", creditor=mercy)

    assert len(members_of(creditor=mercy)) == 6


# --- concurrent invitations (PostgreSQL) --------------------------------------------------------


@pytest.mark.postgresql
def test_concurrent_invitations_never_exceed_the_seat_limit(
    transactional_db: None, supplier: Organization, customer_2: Customer
) -> None:
    """Ten invitations to the same customer at once, each in a thread with its own database
    connection, for a limit of three: exactly three memberships, seven clear refusals."""
    set_policy(supplier, seats_per_customer=3)
    customer_2.organization  # noqa: B018  (loaded here, not in the threads)
    results = dict(
        enumerate(in_threads(10, lambda n: invite(supplier, f"person{n}@anvil.example", customer=customer_2)))
    )

    admitted = sorted(n for n, result in results.items() if isinstance(result, Membership))
    refused = [result for result in results.values() if not isinstance(result, Membership)]
    assert len(admitted) == 3
    assert all(isinstance(result, ServiceError) and result.code == "seat_limit" for result in refused), (
        refused
    )
    assert len(refused) == 7
    assert sorted(members_of(customer=customer_2)) == sorted(
        (f"person{n}@anvil.example", "customer") for n in admitted
    )
    assert sorted(email for email in emails() if email.endswith("@anvil.example")) == sorted(
        f"person{n}@anvil.example" for n in admitted
    )
    assert len(invited_events()) == 3
