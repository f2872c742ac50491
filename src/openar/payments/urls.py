"""The sandbox provider's own pages (its "hosted checkout"), mounted at ``/sandbox/``: a
stand-in for a payment provider's site, not a page of the portal."""

from django.urls import path

from openar.payments import sandbox_views

app_name = "sandbox"
urlpatterns = [
    path("pay/<str:checkout_id>/", sandbox_views.checkout, name="checkout"),
    path("pay/<str:checkout_id>/challenge/", sandbox_views.challenge, name="challenge"),
    path("setup/<str:setup_id>/", sandbox_views.setup, name="setup"),
]
