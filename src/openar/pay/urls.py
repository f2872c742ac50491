"""The login-free pay page, ``/pay/``: reached with a pay-page link (``/pay/<token>/``) from a
reminder; it sees what is past due and nothing else of the account."""

from django.urls import path

from openar.identity import views as identity_views
from openar.pay import views

app_name = "pay"
urlpatterns = [
    path("", views.home, name="home"),
    path("checkout/", views.checkout, name="checkout"),
    path("payment/<int:payment_id>/", views.payment, name="payment"),
    path("payment/<int:payment_id>/receipt.pdf", views.receipt, name="payment_receipt"),
    path("promise/", views.promise, name="promise"),
    path("plan/", views.plan, name="plan"),
    path("plan/method/<int:setup_id>/", views.plan_method, name="plan_method_return"),
    path("step-up/", views.step_up, name="step_up"),
    # Last: a link's token (never one of the words above) opens like any sign-in link.
    path("<str:token>/", identity_views.magic_open, name="open"),
]
