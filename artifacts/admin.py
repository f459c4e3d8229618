from django.contrib import admin, messages

from . import builder
from .models import Artifact


@admin.register(Artifact)
class ArtifactAdmin(admin.ModelAdmin):
    list_display = (
        "format",
        "label",
        "size_kb",
        "short_sha256",
        "build_ms",
        "hits",
        "last_served",
        "created_at",
    )
    list_filter = ("format", "created_at")
    search_fields = ("label", "=key", "=sha256")
    date_hierarchy = "last_served"
    actions = ["purge_selected"]

    @admin.display(description="size (KB)", ordering="size")
    def size_kb(self, artifact: Artifact) -> str:
        return f"{artifact.size / 1024:.0f}"

    @admin.display(description="output sha256")
    def short_sha256(self, artifact: Artifact) -> str:
        return artifact.sha256[:16]

    @admin.display(description="build (ms)", ordering="build_seconds")
    def build_ms(self, artifact: Artifact) -> str:
        return f"{artifact.build_seconds * 1000:.0f}"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # purge also removes the files
        return actions

    @admin.action(description="Purge: delete these images (rebuilt on next request)")
    def purge_selected(self, request, queryset) -> None:
        count = 0
        for artifact in queryset:
            builder.purge(artifact)
            count += 1
        self.message_user(request, f"Purged {count} image(s).", messages.SUCCESS)

    def delete_model(self, request, obj: Artifact) -> None:
        builder.purge(obj)
