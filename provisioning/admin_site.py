"""The admin site: Django's, asking staff for a verified TOTP device when
ZOSBOOT_ADMIN_REQUIRE_OTP is set (django-otp's OTPAdminSite), the plain login otherwise.

A TOTP guess is throttled by the device itself (django-otp doubles the wait after each wrong
token); a password guess by django-axes, like any admin login.

Its home opens on the fleet's state (provisioning/admin/home.py), the service's own sections
first and the security apps below; every list can be exported as CSV (provisioning/admin/
export.py). A query parameter holding a number no column can hold is refused with a 400 before
any list sees it."""

from __future__ import annotations

import functools
import logging

from django.conf import settings
from django.contrib import admin
from django.http import HttpResponseBadRequest
from django.urls import path
from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite
from django_otp.plugins.otp_totp.models import TOTPDevice


class LoginForm(OTPAdminAuthenticationForm):
    """django-otp's admin login, where a code typed without choosing a device is checked
    against the user's authenticator app (one step at the usual login); backup codes are
    chosen in the device list the form shows after a first attempt."""

    def _chosen_device(self, user):
        device = super()._chosen_device(user)
        if device is None and not self.cleaned_data.get("otp_device"):
            # Locked like a chosen device, so concurrent guesses are counted one by one.
            device = (
                TOTPDevice.objects.devices_for_user(user, confirmed=True)
                .select_for_update()
                .first()
            )
        return device


#: The sections of the home page, in this order: the service's own, then the security apps.
APP_ORDER = ("provisioning", "artifacts", "auth", "otp_totp", "otp_static", "axes")
#: The service's lists in the order an operator looks for them: what boots, the machines,
#: what they did, then the trails.
MODEL_ORDER = (
    "Network", "Kernel", "BranchLink", "PendingSwitch", "Node", "Farm", "LatestBoot",
    "BootEvent", "Artifact", "KernelChange", "LinkChange", "KernelRecord", "FleetChange",
    "ApiToken",
)  # fmt: skip


logger = logging.getLogger("zosboot.admin")

#: The largest integer a database column here holds (SQLite's INTEGER, PostgreSQL's bigint).
INTEGER_MAX = 2**63 - 1


def out_of_range(request) -> str | None:
    """The first query parameter holding a whole number no column can hold: Django's own list
    filters pass it to the database, where SQLite cannot even take it."""
    for name, value in request.GET.items():
        digits = value.strip().removeprefix("-")
        if digits.isascii() and digits.isdigit():
            if len(digits) > len(str(INTEGER_MAX)) or int(digits) > INTEGER_MAX:
                return name
    return None


def too_large(what: str) -> HttpResponseBadRequest:
    return HttpResponseBadRequest(
        f"{what}: this number is too large for anything the service stores\n",
        content_type="text/plain; charset=utf-8",
    )


def refusing_out_of_range(view):
    """`view`, answering 400 instead of failing when a number in the request (a list's filter,
    a form's choice of a row, the rows an action is for) is beyond what SQLite can compare."""

    @functools.wraps(view)
    def checked(request, *args, **kwargs):
        name = out_of_range(request)
        if name is not None:
            return too_large(name[:40])
        try:
            response = view(request, *args, **kwargs)
            # A form's widgets look up the rows it names while the page renders.
            if callable(getattr(response, "render", None)) and not response.is_rendered:
                response.render()
            return response
        except OverflowError:
            logger.warning("%s %s: a number too large to store", request.method, request.path)
            return too_large("a number in this request")

    return checked


class AdminSite(OTPAdminSite):
    """`admin.site` (provisioning.apps.AdminConfig); titles are set in provisioning/admin."""

    # Each list's columns need the width at 1280 pixels; the home page lists every section.
    enable_nav_sidebar = False

    def __init__(self, name: str = "admin") -> None:
        super().__init__(name)

    def admin_view(self, view, cacheable=False):
        return super().admin_view(refusing_out_of_range(view), cacheable)

    def get_urls(self):
        view = self.admin_view(self.export_csv)
        return [path("<str:app_label>/<str:model_name>/export.csv", view, name="export_csv"),
                *super().get_urls()]  # fmt: skip

    def export_csv(self, request, app_label: str, model_name: str):
        from .admin import export

        return export.export_list(self, request, app_label, model_name)

    def index(self, request, extra_context=None):
        from .admin import home

        return super().index(request, {**home.context(request), **(extra_context or {})})

    def get_app_list(self, request, app_label=None):
        apps = super().get_app_list(request, app_label)
        rank = {label: index for index, label in enumerate(APP_ORDER)}
        apps.sort(key=lambda app: (rank.get(app["app_label"], len(rank)), app["name"]))
        for app in apps:
            app["models"].sort(
                key=lambda model: (
                    MODEL_ORDER.index(model["object_name"])
                    if model["object_name"] in MODEL_ORDER
                    else len(MODEL_ORDER),
                    model["name"],
                )
            )
        return apps

    # Read at each request, so the setting is what counts (and tests can change it).
    @property
    def login_form(self):
        return LoginForm if settings.ZOSBOOT_ADMIN_REQUIRE_OTP else None

    @property
    def login_template(self):
        return OTPAdminSite.login_template if settings.ZOSBOOT_ADMIN_REQUIRE_OTP else None

    def has_permission(self, request) -> bool:
        if settings.ZOSBOOT_ADMIN_REQUIRE_OTP:
            return super().has_permission(request)  # staff, active and verified
        return admin.AdminSite.has_permission(self, request)
