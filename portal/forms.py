"""The portal's one form: network, farm ID, extra kernel arguments.

Validated with the rules the boot URLs use (provisioning.validators and provisioning.scripts),
so the portal accepts exactly what `/iso/...` and `/ipxe/...` accept, with the same reasons.
"""

from __future__ import annotations

import re

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Max, QuerySet

from provisioning.models import Farm, Network
from provisioning.scripts import BootError, find_network, network_kernel
from provisioning.validators import clean_kernel_args, parse_farmer_id

from .downloads import survives_url

# A message starting with a plain word ("farm ID must ...") gets a capital; one starting with a
# literal ("runmode= is set ...", "';' is not allowed") must keep it as typed.
_PLAIN_WORD_RE = re.compile(r"[a-z]+(?=[ ,;:])")


def portal_networks() -> QuerySet[Network]:
    """Active networks with their kernel and since when they boot it (`kernel_since`)."""
    return (
        Network.objects.active()
        .select_related("kernel")
        .annotate(kernel_since=Max("kernel_changes__changed_at"))
        .order_by("slug")
    )


def default_network(networks) -> str:
    """The network preselected on a fresh page: prod when it can boot, else the first that can."""
    bootable = [network.slug for network in networks if network.kernel_id]
    if "prod" in bootable:
        return "prod"
    return bootable[0] if bootable else ""


def sentence(message: str) -> str:
    """The service's one-line reasons are lower-case fragments; the page shows sentences."""
    if _PLAIN_WORD_RE.match(message):
        message = message[:1].upper() + message[1:]
    return message if message.endswith((".", "?", "!")) else message + "."


class BootImageForm(forms.Form):
    network = forms.CharField(required=False)
    farm = forms.CharField(label="Farm ID", required=False)
    extra = forms.CharField(label="Extra kernel arguments", required=False, strip=False)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.farm_obj: Farm | None = None

    def clean_network(self) -> str:
        slug = self.cleaned_data["network"].strip()
        if not slug:
            raise ValidationError("Choose the network your server will join.", code="required")
        try:
            network_kernel(find_network(slug))
        except BootError as error:
            raise ValidationError(sentence(error.message), code="network") from None
        return slug

    def clean_farm(self) -> int:
        raw = self.cleaned_data["farm"].strip()
        if not raw:
            raise ValidationError("Enter your farm ID (a number).", code="required")
        try:
            farmer_id = parse_farmer_id(raw)
        except ValidationError as exc:
            raise ValidationError(sentence(exc.messages[0]), code=exc.error_list[0].code) from None
        self.farm_obj = Farm.objects.filter(farmer_id=farmer_id).first()
        if self.farm_obj is not None and not self.farm_obj.active:
            raise ValidationError(
                f"Farm {farmer_id} is disabled on this boot service; ask its operators.",
                code="farm_disabled",
            )
        return farmer_id

    def clean_extra(self) -> str:
        try:
            extra = clean_kernel_args(self.cleaned_data["extra"])
        except ValidationError as exc:
            raise ValidationError(sentence(exc.messages[0]), code=exc.error_list[0].code) from None
        if not survives_url(extra):
            raise ValidationError(
                "An underscore next to '/' cannot be written in a download link "
                "(links write '/' as ___); add a space or drop the underscore.",
                code="ambiguous_slash",
            )
        return extra

    @property
    def farm_name(self) -> str:
        return self.farm_obj.name if self.farm_obj is not None else ""
