"""The admin site: Django's, asking staff for a verified TOTP device when
ZOSBOOT_ADMIN_REQUIRE_OTP is set (django-otp's OTPAdminSite), the plain login otherwise.

A TOTP guess is throttled by the device itself (django-otp doubles the wait after each wrong
token); a password guess by django-axes, like any admin login."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
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


class AdminSite(OTPAdminSite):
    """`admin.site` (provisioning.apps.AdminConfig); titles are set in provisioning/admin."""

    def __init__(self, name: str = "admin") -> None:
        super().__init__(name)

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
