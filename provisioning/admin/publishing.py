"""Branch links and API tokens in the admin: links move and roll back through the audited
path; a token is shown once, when it is made, and can be revoked."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from ..models import ApiToken, BranchLink, LinkChange
from .readonly import ReadOnlyAdmin


class LinkChangeInline(admin.TabularInline):
    model = LinkChange
    fields = ("changed_at", "previous_name", "new_name", "changed_by", "changed_via", "note")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    ordering = ("-changed_at", "-pk")


@admin.register(BranchLink)
class BranchLinkAdmin(admin.ModelAdmin):
    list_display = ("name", "kernel", "followed_by", "created_at")
    search_fields = ("name", "kernel__name")
    list_filter = ("created_at",)
    list_select_related = ("kernel",)
    autocomplete_fields = ("kernel",)
    inlines = [LinkChangeInline]
    actions = ["rollback"]

    @admin.display(description="networks following it")
    def followed_by(self, link: BranchLink) -> str:
        followers = [network.slug for network in link.networks.all()]
        followers += [f"{network.slug} (arm64)" for network in link.networks_arm64.all()]
        return ", ".join(followers) or "-"

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("networks", "networks_arm64")

    def get_readonly_fields(self, request, obj=None):
        # Nodes and images name the link: renaming it would strand them.
        return ("name",) if obj else ()

    def save_model(self, request, obj: BranchLink, form, change: bool) -> None:
        # Every move goes through the audited path, the one the API uses.
        link, _ = BranchLink.point(obj.name, obj.kernel, user=request.user, note="admin")
        obj.pk = link.pk

    @admin.action(description="Roll back to the previous build")
    def rollback(self, request, queryset) -> None:
        for link in queryset:
            try:
                change = link.rollback(user=request.user)
            except BranchLink.NoPrevious as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                self.message_user(
                    request, f"Link {link.name} serves {change.new_name} again.", messages.SUCCESS
                )


@admin.register(LinkChange)
class LinkChangeAdmin(ReadOnlyAdmin):
    list_display = ("changed_at", "link", "previous_name", "new_name", "changed_by", "changed_via")
    list_filter = ("link", "changed_at")
    search_fields = ("previous_name", "new_name", "changed_via", "note")
    date_hierarchy = "changed_at"


class ApiTokenForm(forms.ModelForm):
    scope_choices = forms.MultipleChoiceField(
        label="scopes",
        choices=ApiToken.Scope.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text="What the token may do.",
    )

    class Meta:
        model = ApiToken
        fields = ("name",)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    form = ApiTokenForm
    list_display = ("name", "scopes", "created_at", "created_by", "last_used_at", "active")
    list_filter = ("revoked_at", "created_at")
    search_fields = ("name", "prefix")
    readonly_fields = ("prefix", "scopes", "created_at", "created_by", "last_used_at",
                       "revoked_at")  # fmt: skip
    actions = ["revoke"]

    @admin.display(boolean=True, description="active")
    def active(self, token: ApiToken) -> bool:
        return token.active

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("name", "scope_choices")
        return ("name", *self.readonly_fields)

    def get_readonly_fields(self, request, obj=None):
        return ("name", *self.readonly_fields) if obj else ()

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None or super().has_change_permission(request, obj)

    def save_model(self, request, obj: ApiToken, form, change: bool) -> None:
        if change:
            return
        try:
            token, secret = ApiToken.issue(
                form.cleaned_data["name"], form.cleaned_data["scope_choices"], user=request.user
            )
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc
        obj.pk, obj.prefix = token.pk, token.prefix
        self.message_user(
            request,
            f"API token {token.name}: {secret}  (copy it now: it is not shown again)",
            messages.WARNING,
        )

    @admin.action(description="Revoke: the token stops working at once")
    def revoke(self, request, queryset) -> None:
        for token in queryset:
            token.revoke()
        self.message_user(request, f"{queryset.count()} token(s) revoked.", messages.SUCCESS)
