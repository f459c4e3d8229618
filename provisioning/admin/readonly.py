"""Audit trails and history in the admin: shown and filtered, never added, changed or
deleted there (history goes by age only, through prune_boot_history)."""

from django.contrib import admin
from django.utils.text import capfirst


class ReadOnlyAdmin(admin.ModelAdmin):
    def changelist_view(self, request, extra_context=None):
        # Titled by what it lists: "Select ... to change" on a list where nothing changes
        # says otherwise.
        title = capfirst(self.model._meta.verbose_name_plural)
        return super().changelist_view(request, {"title": title, **(extra_context or {})})

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class SwitchingTrailAdmin(ReadOnlyAdmin):
    """A trail whose rows stay read-only but whose actions switch a network (roll back to
    an entry, decide a pending switch): they need the right to change networks."""

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None and request.user.has_perm("provisioning.change_network")
