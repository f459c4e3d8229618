"""Branch links and API tokens in the admin: links move and roll back through the audited
path, after a page naming the networks following them and the machines reached, and never on
one operator's word for a four-eyes network; a token is shown once, when it is made, and can be
revoked."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import ValidationError

from .. import switching
from ..errors import reason
from ..models import ApiToken, BranchLink, LinkChange
from . import confirm
from .readonly import ReadOnlyAdmin


class LinkChangeInline(admin.TabularInline):
    model = LinkChange
    fields = ("changed_at", "previous_name", "new_name", "changed_by", "changed_via", "note")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    ordering = ("-changed_at", "-pk")


def four_eyes_followers(link: BranchLink) -> list[str]:
    """The networks following `link` on which a switch waits for a second operator."""
    followers = [*link.networks.all(), *link.networks_arm64.all()]
    return sorted({n.slug for n in followers if switching.needs_second_operator(n)})


def four_eyes_refusal(link: BranchLink) -> str:
    """Why one operator may not move `link` in the admin ("" if they may)."""
    guarded = four_eyes_followers(link)
    if not guarded:
        return ""
    one = len(guarded) == 1
    return (
        f"{', '.join(guarded)} follow{'s' if one else ''} link {link.name} and "
        f"take{'s' if one else ''} a new kernel only with a second operator's approval: switch "
        f"{'the network' if one else 'each network'} to the build in Networks (it waits in "
        "Pending kernel switches), or let the release pipeline publish it"
    )


class BranchLinkForm(forms.ModelForm):
    """Refuses, on the form, a move the audited path would refuse, and one that would switch
    a four-eyes network on one operator's word."""

    class Meta:
        model = BranchLink
        fields = ("name", "kernel")

    def clean(self):
        data = super().clean()
        kernel = data.get("kernel")
        if self.instance.pk is None or kernel is None or kernel.pk == self.instance.kernel_id:
            return data
        # The instance is the link as saved: the form puts the new kernel in after clean().
        refusal = four_eyes_refusal(self.instance)
        if refusal:
            raise ValidationError(refusal, code="four_eyes")
        self.instance.check_move(kernel)
        return data


@admin.register(BranchLink)
class BranchLinkAdmin(admin.ModelAdmin):
    form = BranchLinkForm
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

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if request.method == "POST" and object_id is not None and not confirm.confirmed(request):
            page = self._confirm_move(request, object_id)
            if page is not None:
                return page
        return super().changeform_view(request, object_id, form_url, extra_context)

    def _confirm_move(self, request, object_id):
        """The confirmation page when the form moves the link (None: it does not, or the form
        has errors the form itself shows)."""
        link = self.get_object(request, unquote(object_id))
        if link is None or not self.has_change_permission(request, link):
            return None
        saved = BranchLink.objects.select_related("kernel").get(pk=link.pk)
        form = self.get_form(request, link, change=True)(request.POST, instance=link)
        if not form.is_valid() or form.cleaned_data["kernel"].pk == saved.kernel_id:
            return None
        return confirm.page(
            request, self, title=f"Move link {saved.name}?",
            switches=confirm.link_move(saved, form.cleaned_data["kernel"]),
            keep=confirm.form_fields(request), button="Move", note=confirm.link_nodes(saved),
        )  # fmt: skip

    def save_model(self, request, obj: BranchLink, form, change: bool) -> None:
        # Every move goes through the audited path, the one the API uses.
        link, _ = BranchLink.point(obj.name, obj.kernel, user=request.user, note="admin")
        obj.pk = link.pk

    @admin.action(description="Roll back to the previous build")
    def rollback(self, request, queryset):
        moves = []
        for link in queryset.select_related("kernel"):
            try:
                last = link.rollback_target()
            except BranchLink.NoPrevious as exc:
                self.message_user(request, str(exc), messages.ERROR)
                continue
            refusal = four_eyes_refusal(link)
            if refusal:
                self.message_user(request, refusal, messages.ERROR)
            else:
                moves.append((link, last.previous))
        if moves and not confirm.confirmed(request):
            notes = (confirm.link_nodes(link) for link, _ in moves)
            return confirm.page(
                request, self, title="Roll back these links?" if len(moves) > 1 else
                f"Roll back link {moves[0][0].name}?",
                switches=[s for link, kernel in moves for s in confirm.link_move(link, kernel)],
                keep=confirm.action_fields(request), button="Roll back",
                note=" ".join(note for note in notes if note),
            )  # fmt: skip
        for link, _ in moves:
            try:
                change = link.rollback(user=request.user)
            except (BranchLink.NoPrevious, ValidationError) as exc:
                self.message_user(request, reason(exc), messages.ERROR)
            else:
                self.message_user(
                    request, f"Link {link.name} serves {change.new_name} again.", messages.SUCCESS
                )
        return None


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
