from django.conf import settings
from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.urls import include, path
from django.views.generic import TemplateView

from openar.core import views as core_views
from openar.identity import views as identity_views
from openar.identity.sessions import usersession_end
from openar.notifications import views as notification_views
from openar.portal.views import home

urlpatterns = [
    path("", home, name="home"),
    path("healthz", core_views.healthz, name="healthz"),
    path("readyz", core_views.readyz, name="readyz"),
    path("accounts/sessions/<int:session_id>/end/", usersession_end, name="usersession_end"),
    path("accounts/", include("allauth.urls")),
    path("l/confirm/", identity_views.magic_confirm, name="magic_confirm"),
    path("l/request/", identity_views.magic_request, name="magic_request"),
    path("l/unusable/", identity_views.magic_unusable, name="magic_unusable"),
    path("l/sign-out/", identity_views.magic_sign_out, name="magic_sign_out"),
    path("l/<str:token>/", identity_views.magic_open, name="magic_open"),
    path("u/<str:token>/", notification_views.unsubscribe, name="unsubscribe"),
    path("portal/", include("openar.portal.urls")),
    path("pay/", include("openar.pay.urls")),
    path("client/", include("openar.client.urls")),
    path("desk/", include("openar.desk.urls")),
    path("welcome/", login_required(TemplateView.as_view(template_name="welcome.html")), name="welcome"),
    path("admin/", admin.site.urls),
    path("hooks/", include("openar.notifications.urls")),
    path("sandbox/", include("openar.payments.urls")),
]

if getattr(settings, "OPENAR_DEMO", False):
    urlpatterns += [
        path("demo/sign-in/", identity_views.demo_signin_confirm, name="demo_signin_confirm"),
        path("demo/sign-in/<str:token>/", identity_views.demo_signin, name="demo_signin"),
    ]

handler400 = "openar.core.views.bad_request"
handler404 = "openar.core.views.not_found"
handler500 = "openar.core.views.server_error"
