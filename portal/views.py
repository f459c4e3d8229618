"""The farmer portal: pick a network and farm, get a boot image; and the kernels page.

`/` works without JavaScript: the form is a GET to `/` and the answer is the same page with
the preview and the links (or the reasons inline). With JavaScript, portal.js asks
`/portal/preview` as the farmer types and swaps in the same fragment the page renders.
"""

from __future__ import annotations

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from provisioning import lookups, timeline
from provisioning.clients import public_base_url
from provisioning.errors import BootError
from provisioning.models import BootEvent, LatestBoot
from provisioning.validators import NETWORK_SLUG_RE, parse_farmer_id

from . import downloads
from .forms import BootImageForm, default_network, portal_networks, sentence
from .kernel_history import all_network_kernels, branch_links, current_by_kernel

FIELDS = ("network", "farm", "extra")


def _form(request: HttpRequest, networks) -> BootImageForm:
    if not any(name in request.GET for name in FIELDS):
        return BootImageForm(initial={"network": default_network(networks)})
    try:
        base_url = public_base_url(request)
    except BootError as error:
        form = BootImageForm(request.GET)
        form.is_valid()
        form.add_error(None, sentence(error.message))
        return form
    return BootImageForm(request.GET, base_url=base_url)


def _field_messages(form: BootImageForm) -> dict[str, dict[str, str]]:
    """The one line shown under each field: its error, or what the service knows about it."""
    messages = {name: {"kind": "", "text": ""} for name in FIELDS}
    if not form.is_bound:
        return messages
    for name in FIELDS:
        if form.errors.get(name):
            messages[name] = {"kind": "error", "text": form.errors[name][0]}
    if form.answer is not None and form.answer.boots:
        farm = form.cleaned_data["farm"]
        if form.known_farm is None:
            text = f"Farm {farm} is not registered here; check the number: nodes join this farm."
        elif form.known_farm.name:
            text = f"Farm {farm}: {form.known_farm.name}"
        else:
            text = f"Farm {farm} is registered on this boot service."
        messages["farm"] = {"kind": "info", "text": text}
    return messages


def _result(form: BootImageForm) -> dict:
    """Context of the part below the form: links, script preview, how to write the image."""
    typed = form.data.get("network", "") if form.is_bound else form.initial.get("network", "")
    network = typed if NETWORK_SLUG_RE.fullmatch(typed or "") else "NETWORK"
    unfilled = downloads.unfilled_links(network)
    by_key = {link.choice.key: link for link in unfilled}
    context = {
        "ready": False,
        "cards": unfilled,
        "script": "",
        "image_script": "",
        "preview_status": "Appears here once the network and farm ID are valid.",
        "krn_howto": downloads.krn_howto(by_key["krn"].filename),
        "iso_name": by_key["iso"].filename,
        "usb_name": by_key["usb"].filename,
    }
    if not form.is_bound or not form.is_valid():
        return context
    network = form.cleaned_data["network"]
    farmer_id = form.cleaned_data["farm"]
    cards = downloads.links(network, farmer_id, form.cleaned_data["extra"])
    by_key = {link.choice.key: link for link in cards}
    context.update(
        ready=True,
        cards=cards,
        script=form.answer.script,
        image_script=form.answer.image_script,
        farm_page=reverse("portal:farm", args=[farmer_id]),
        farmer_id=farmer_id,
        preview_status=f"Boot script for network {network}, farm {farmer_id}.",
        script_url=form.base_url + by_key["ipxe"].path,
        krn_howto=downloads.krn_howto(by_key["krn"].filename),
        iso_name=by_key["iso"].filename,
        usb_name=by_key["usb"].filename,
        iso_url=form.base_url + by_key["iso"].path,
    )
    return context


@require_safe
def index(request: HttpRequest) -> HttpResponse:
    networks = list(portal_networks())
    form = _form(request, networks)
    result = _result(form)
    selected = form.data.get("network") if form.is_bound else form.initial.get("network")
    context = {
        "form": form,
        "networks": networks,
        "selected_network": selected,
        "field_messages": _field_messages(form),
        "form_error": form.non_field_errors()[0] if form.non_field_errors() else "",
        **result,
    }
    return render(request, "portal/index.html", context)


@never_cache
@require_safe
def preview(request: HttpRequest) -> JsonResponse:
    """What portal.js needs to update the page: the fragment below the form and the lines
    under each field. Always 200: an invalid form is an answer too."""
    form = _form(request, [])
    result = _result(form)
    errors = {name: msgs[0] for name, msgs in form.errors.items()}
    return JsonResponse(
        {
            "ready": result["ready"],
            "errors": errors,
            "field_messages": _field_messages(form),
            "form_error": errors.get("__all__", ""),
            "preview_status": result["preview_status"],
            "script": result["script"],
            "image_script": result["image_script"],
            "html": render_to_string("portal/_result.html", result, request=request),
        }
    )


@require_safe
def kernels(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "portal/kernels.html",
        {"networks": all_network_kernels(), "links": branch_links()},
    )


@never_cache
@require_safe
def current_kernels(request: HttpRequest) -> HttpResponse:
    """`/kernels/current.txt`: one line per kernel an active network boots now, on either
    architecture (pinned or through a link): `<sha256> <size> <name> <network:arch>...`.
    What `setup/edge.sh --warm` pulls through an edge after a release."""
    lines = [
        " ".join([kernel.sha256, str(kernel.size), kernel.name, *users])
        for kernel, users in current_by_kernel()
    ]
    return HttpResponse(
        "".join(f"{line}\n" for line in lines), content_type="text/plain; charset=utf-8"
    )


#: How far back the farm page looks.
FARM_DAYS = 7
#: At most this many machines on one farm page (the most recent first).
FARM_MACHINES = 1000


@require_safe
def farm_machines(request: HttpRequest, farmer_id: str) -> HttpResponse:
    """`/farms/<farmer_id>/`: the farm's machines seen in the last days, each with its latest
    milestone and what to check. Farm IDs are public, so nothing here helps an attacker: no
    address, MACs cut to their last three bytes, no link into the admin."""
    try:
        farm = parse_farmer_id(farmer_id)
    except ValidationError as exc:
        return render(request, "portal/farm_error.html", {"message": exc.messages[0]}, status=400)
    since = timezone.now() - timedelta(days=FARM_DAYS)
    rows = LatestBoot.objects.filter(farmer_id=farm, milestone_at__gte=since).order_by(
        "-milestone_at"
    )[:FARM_MACHINES]
    now = timezone.now()
    machines = [
        {
            "label": _short_mac(row.mac),
            "state": timeline.state_of(row, now),
            "milestone": BootEvent.Kind(row.milestone).label if row.milestone else "-",
            "at": row.milestone_at,
            "kernel": row.kernel_name,
            "reason": timeline.reason(row, now),
        }
        for row in rows
    ]
    known = lookups.current().farm(farm)
    context = {
        "farmer_id": farm,
        "farm_name": known.name if known else "",
        "machines": machines,
        "days": FARM_DAYS,
    }
    return render(request, "portal/farm.html", context)


def _short_mac(mac: str) -> str:
    """The last three bytes of a MAC: enough for a farmer to tell machines apart, not an
    address anyone can use elsewhere."""
    return "..:" + mac[-8:] if mac else "(network card not known yet)"
