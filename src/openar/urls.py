from django.conf import settings
from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.urls import include, path
from django.views.generic import TemplateView

from openar.core import views as core_views
from openar.portal.views import home

urlpatterns = [
    path("", home, name="home"),
    path("healthz", core_views.healthz, name="healthz"),
    path("readyz", core_views.readyz, name="readyz"),
    path("accounts/", include("allauth.urls")),
    path("portal/", include("openar.portal.urls")),
    path("desk/", include("openar.desk.urls")),
    path("welcome/", login_required(TemplateView.as_view(template_name="welcome.html")), name="welcome"),
    path("admin/", admin.site.urls),
]

if getattr(settings, "OPENAR_DEMO", False):
    from openar.identity.views import demo_signin, demo_signin_confirm

    urlpatterns += [
        path("demo/sign-in/", demo_signin_confirm, name="demo_signin_confirm"),
        path("demo/sign-in/<str:token>/", demo_signin, name="demo_signin"),
    ]

handler400 = "openar.core.views.bad_request"
handler404 = "openar.core.views.not_found"
handler500 = "openar.core.views.server_error"
