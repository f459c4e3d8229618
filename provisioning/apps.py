from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class ProvisioningConfig(AppConfig):
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
