"""The portal's one form: network, farm ID, extra kernel arguments.

Validated with the rules the boot URLs use (provisioning.validators and provisioning.scripts),
so the portal accepts exactly what `/iso/...` and `/ipxe/...` accept, with the same reasons.
"""

from __future__ import annotations

import re

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Max, Q, QuerySet

from provisioning import answers
from provisioning.lookups import KnownFarm
from provisioning.models import Network
from provisioning.validators import clean_kernel_args, parse_farmer_id

from .downloads import extra_segment, survives_url

# A message starting with a plain word ("farm ID must ...") gets a capital; one starting with a
# literal ("runmode= is set ...", "';' is not allowed") must keep it as typed.
_PLAIN_WORD_RE = re.compile(r"[a-z]+(?=[ ,;:])")


def portal_networks() -> QuerySet[Network]:
    """Active networks with their kernel and since when they boot it (`kernel_since`)."""
    return (
        Network.objects.active()
        .select_related(*Network.POINTERS_JOINED)
        .annotate(
            kernel_since=Max("kernel_changes__changed_at", filter=Q(kernel_changes__arch="amd64"))
        )
        .order_by("slug")
    )


def default_network(networks) -> str:
    """The network preselected on a fresh page: prod when it can boot, else the first that can."""
    bootable = [network.slug for network in networks if network.has_kernel]
    if "prod" in bootable:
        return "prod"
    return bootable[0] if bootable else ""


def sentence(message: str) -> str:
    """The service's one-line reasons are lower-case fragments; the page shows sentences."""
    if _PLAIN_WORD_RE.match(message):
        message = message[:1].upper() + message[1:]
    return message if message.endswith((".", "?", "!")) else message + "."


class BootImageForm(forms.Form):
    """Validated the way the node URLs are: each field's own rule first (the very functions
    the URLs use, so the same message), then the one boot answer for the link the page would
    offer, whose refusal lands next to the field at fault. The view uses that answer: one
    lookup of each network and farm, one rendering of the script."""

    network = forms.CharField(required=False)
    farm = forms.CharField(label="Farm ID", required=False)
    extra = forms.CharField(label="Extra kernel arguments", required=False, strip=False)

    def __init__(self, *args, base_url: str = "", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.base_url = base_url
        self.answer: answers.Answer | None = None

    def clean_network(self) -> str:
        slug = self.cleaned_data["network"].strip()
        if not slug:
            raise ValidationError("Choose the network your server will join.", code="required")
        return slug

    def clean_farm(self) -> int:
        raw = self.cleaned_data["farm"].strip()
        if not raw:
            raise ValidationError("Enter your farm ID (a number).", code="required")
        try:
            return parse_farmer_id(raw)
        except ValidationError as exc:
            raise ValidationError(sentence(exc.messages[0]), code=exc.error_list[0].code) from None

    def clean_extra(self) -> str:
        try:
            extra = clean_kernel_args(self.cleaned_data["extra"])
        except ValidationError as exc:
            raise ValidationError(sentence(exc.messages[0]), code=exc.error_list[0].code) from None
        if not survives_url(extra):
            raise ValidationError(
                "An underscore next to a slash cannot be written in a download link "
                "(links write a slash as ___); add a space or drop the underscore.",
                code="ambiguous_slash",
            )
        return extra

    def clean(self) -> dict:
        cleaned = super().clean()
        if "network" not in cleaned:
            return cleaned
        # The parts that passed their own rule: an unknown network is reported next to a
        # malformed farm ID, at once, not one after the other.
        farm, extra = cleaned.get("farm"), cleaned.get("extra")
        answer = answers.for_path(
            cleaned["network"],
            str(farm) if farm is not None else None,
            extra_segment(extra) if extra else None,
            base_url=self.base_url,
        )
        if not answer.boots:
            part = answer.part if answer.part in self.fields else None
            self.add_error(part, ValidationError(sentence(answer.message), code=part))
        # The page's script and links come from this answer: only a whole one will do.
        self.answer = None if self.errors else answer
        return cleaned

    @property
    def known_farm(self) -> KnownFarm | None:
        """The farm as the service knows it (None: not registered, or not valid yet)."""
        return self.answer.target.farm if self.answer and self.answer.boots else None
