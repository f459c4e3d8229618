from axes.apps import AppConfig as AxesConfig
from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django_otp.plugins.otp_static.apps import DefaultConfig as StaticConfig
from django_otp.plugins.otp_totp.apps import DefaultConfig as TOTPConfig


class ProvisioningConfig(AppConfig):
    # The app's own config among the others of this module (Django picks the one marked).
    default = True
    name = "provisioning"
    verbose_name = "Provisioning"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, signals  # noqa: F401  (registers checks and signal handlers)


class AdminConfig(admin_apps.AdminConfig):
    """Django's admin with zosboot's site as `admin.site`, so every registration (ours,
    axes', django-otp's) lands on the site that asks for a second factor when required."""

    default = False  # named in INSTALLED_APPS in place of django.contrib.admin
    default_site = "provisioning.admin_site.AdminSite"


# The security apps under names an operator reads (the admin's sections and breadcrumbs show
# an app's verbose name; django-otp's plugins have none, so "OTP_TOTP" showed).
class LoginLockoutConfig(AxesConfig):
    verbose_name = "Login lockout (failed logins)"


class TOTPDevicesConfig(TOTPConfig):
    verbose_name = "Second factor: authenticator apps (TOTP)"


class BackupCodesConfig(StaticConfig):
    verbose_name = "Second factor: backup codes"
