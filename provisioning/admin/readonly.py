"""Audit trails and history in the admin: shown and filtered, never added, changed or
deleted there (history goes by age only, through prune_boot_history)."""

from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
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
