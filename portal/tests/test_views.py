"""The portal page, its preview endpoint and the kernels page, as a browser without JavaScript
sees them (the Playwright test in test_browser.py covers the JavaScript side)."""

from __future__ import annotations

import html
import re

import pytest
from django.core.exceptions import ValidationError

from artifacts.formats import LKRN_HOWTO
from portal.forms import sentence
from provisioning.models import Farm, KernelChange, Network
from provisioning.scripts import BootError, find_network, network_kernel
from provisioning.tests.tokens import same_script
from provisioning.validators import clean_kernel_args, parse_farmer_id

pytestmark = pytest.mark.django_db


IMAGES = {
    "iso": "zos-prod-1234.iso",
    "usb": "zos-prod-1234-usb.img",
    "uefimg": "zos-prod-1234-uefi.img",
    "uefi": "zos-prod-1234.efi",
    "krn": "zos-prod-1234.lkrn",
    "pxe-kit": "zos-prod-1234-pxe-kit.tar.gz",
}


def parse_farmer_id_error(raw: str) -> str:
    with pytest.raises(ValidationError) as refused:
        parse_farmer_id(raw)
    return refused.value.messages[0]


def clean_kernel_args_error(raw: str) -> str:
    with pytest.raises(ValidationError) as refused:
        clean_kernel_args(raw)
    return refused.value.messages[0]


def page(client, **params) -> str:
    response = client.get("/", params)
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def message(text: str, field: str) -> str:
    """The line under a field (its error or what the service knows about the value)."""
    match = re.search(rf'<p class="msg ?(\w*)" id="msg-{field}">(.*?)</p>', text, re.S)
    assert match, f"no message line for {field}"
    return match.group(2).strip()


def download_links(text: str) -> dict[str, str]:
    return dict(
        re.findall(r'<li class="format" data-format="([\w-]+)">.*?<a class="button" href="([^"]+)"',
                   text, re.S)
    )  # fmt: skip


# --- the page ------------------------------------------------------------------------------


def test_page_lists_active_networks_with_pretty_names_and_their_kernel_since_when(client, prod):
    Network.objects.filter(slug="qa").update(active=False)
    since = KernelChange.objects.get(network=prod).changed_at
    text = page(client)
    assert "Production" in text and "Testnet" in text and "Devnet" in text
    assert "QA-net" not in text
    assert re.search(
        r"boots <code>zero-os-development-amd64.efi</code> since "
        rf'<time datetime="[^"]+">{since:%Y-%m-%d}</time>',
        text,
    )


def test_network_without_a_kernel_is_shown_but_cannot_be_chosen(client, prod):
    text = page(client)
    radio = re.search(r'<input type="radio" name="network" id="network-test"[^>]*>', text).group(0)
    assert "disabled" in radio
    assert "not available yet: no Zero-OS kernel has been published for it" in text
    prod_radio = re.search(r'<input type="radio"[^>]*id="network-prod"[^>]*>', text).group(0)
    assert "disabled" not in prod_radio and "checked" in prod_radio


def test_fresh_page_preselects_prod_complains_about_nothing_and_offers_no_link_yet(client, prod):
    text = page(client)
    assert all(message(text, field) == "" for field in ("network", "farm", "extra"))
    assert download_links(text) == {}
    for filename in IMAGES.values():
        placeholder = filename.replace("1234", "FARM")
        assert f'aria-disabled="true">Download <span class="filename">{placeholder}</span>' in text
    assert "Appears here once the network and farm ID are valid." in text


def test_every_field_has_a_label_and_the_preview_announces_changes(client, prod):
    text = page(client)
    for field in ("farm", "extra"):
        assert f'<label for="id_{field}">' in text
        assert f'id="id_{field}"' in text
    for slug in ("prod", "test", "dev", "qa"):
        assert f'<label for="network-{slug}">' in text
    assert re.search(r'id="preview-status" aria-live="polite"', text)


def test_page_loads_only_its_own_assets(client, prod):
    text = page(client)
    assets = re.findall(r'<(?:link|script)[^>]*(?:href|src)="([^"]+)"', text)
    assert "/static/portal/portal.css" in assets and "/static/portal/portal.js" in assets
    assert all(url.startswith("/static/") or url == "data:," for url in assets), assets


# --- the JS-off flow: the form submits to the same page ------------------------------------


def test_form_is_a_get_to_the_page_itself_with_the_url_parameters(client, prod):
    text = page(client)
    form = re.search(r'<form id="boot-form"[^>]*>', text).group(0)
    assert 'method="get"' in form and 'action="/"' in form
    assert re.search(r'<input type="radio" name="network"', text)
    assert 'name="farm"' in text and 'name="extra"' in text
    assert '<button type="submit"' in text


def test_submitted_form_gives_the_exact_links_of_the_url_contract(client, prod):
    text = page(client, network="prod", farm="1234", extra="")
    links = download_links(text)
    assert links == {fmt: f"/{fmt}/prod/1234" for fmt in IMAGES}
    for fmt, filename in IMAGES.items():
        assert f'href="/{fmt}/prod/1234" data-download data-filename="{filename}"' in text
    assert '<a href="/ipxe/prod/1234">http://testserver/ipxe/prod/1234</a>' in text
    assert "chain --autofree http://testserver/ipxe/prod/1234" in text
    assert "dd if=zos-prod-1234-usb.img of=/dev/sdX bs=4M status=progress conv=fsync" in text
    assert "Attach <code>zos-prod-1234.iso</code>" in text


def test_the_pxe_kit_is_offered_beside_the_images_with_which_one_to_take_and_how(client, prod):
    text = page(client, network="prod", farm="1234")
    assert "Which one do I need?" in text
    assert "Many servers on one LAN: the <strong>PXE kit</strong>" in text
    assert download_links(text)["pxe-kit"] == "/pxe-kit/prod/1234"
    assert "sudo tar -xzf zos-prod-1234-pxe-kit.tar.gz -C /opt" in text
    assert "sudo /opt/zos-prod-1234-pxe-kit/run.sh" in text
    # Before the form is filled in, the card shows the shape of the file name only.
    assert "zos-prod-FARM-pxe-kit.tar.gz" in page(client)


def test_preview_is_the_script_the_ipxe_url_serves(client, prod):
    text = page(client, network="prod", farm="1234")
    preview = re.search(r'<pre class="script" id="preview-script"[^>]*>(.*?)</pre>', text, re.S)
    served = client.get("/ipxe/prod/1234").content.decode()
    assert same_script(preview.group(1), served)
    assert "farmer_id=1234" in served
    assert "Boot script for network prod, farm 1234." in text


def test_extra_args_are_encoded_with_percent_20_and_slash_as_triple_underscore(client, prod):
    text = page(client, network="prod", farm="1234", extra="console=ttyS0  root=/dev/vda x=%41")
    segment = "console=ttyS0%20root=___dev___vda%20x=%2541"
    assert download_links(text)["iso"] == f"/iso/prod/1234/{segment}"
    assert f"chain --autofree http://testserver/ipxe/prod/1234/{segment}" in text
    # The server reads the link back as the very arguments the preview shows.
    served = client.get(f"/ipxe/prod/1234/{segment}").content.decode()
    assert "farmer_id=1234 console=ttyS0 root=/dev/vda x=%41 &&" in served
    preview = re.search(r'id="preview-script"[^>]*>(.*?)</pre>', text, re.S).group(1)
    assert same_script(preview, served)


def test_every_image_link_is_served_under_the_file_name_the_page_shows(client, prod):
    text = page(client, network="prod", farm="1234", extra="console=ttyS0")
    for fmt, path in download_links(text).items():
        response = client.head(path)
        assert response.status_code == 200, (fmt, response.content)
        assert response["Content-Disposition"] == f'attachment; filename="{IMAGES[fmt]}"'
        assert re.fullmatch(r"[0-9a-f]{64}", response["X-Checksum-Sha256"])


def test_krn_card_shows_the_bare_grub_and_syslinux_entries_for_the_one_file(client, prod):
    text = page(client, network="prod", farm="1234")
    shown = LKRN_HOWTO.replace("THIS_FILE", "zos-prod-1234.lkrn")
    assert f'<pre class="code">{shown}</pre>' in text
    assert "cp zos-prod-1234.lkrn /boot/zos.lkrn" in text
    assert "linux16 /boot/zos.lkrn\n" in text and "initrd16" not in text
    assert "KERNEL zos.lkrn" in text and "/krn-tar/" in text


# --- validation, each path shown inline ----------------------------------------------------


@pytest.mark.parametrize("farm", ["", "   "])
def test_empty_farm_id_is_refused_inline(client, prod, farm):
    text = page(client, network="prod", farm=farm)
    assert message(text, "farm") == "Enter your farm ID (a number)."
    assert re.search(r'id="id_farm"[^>]*aria-invalid="true"', text, re.S)
    assert download_links(text) == {}


NOT_A_NUMBER = sentence(parse_farmer_id_error("12a"))
OUT_OF_RANGE = sentence(parse_farmer_id_error("0"))


@pytest.mark.parametrize(
    ("farm", "reason"),
    [
        ("12a", NOT_A_NUMBER),
        ("-5", NOT_A_NUMBER),
        ("1e3", NOT_A_NUMBER),
        ("١٢٣", NOT_A_NUMBER),
        ("0", OUT_OF_RANGE),
        ("4294967296", OUT_OF_RANGE),
        # More digits than parse_farmer_id reads: still a number, so "out of range".
        ("99999999999999999999", OUT_OF_RANGE),
    ],
)
def test_invalid_farm_id_is_refused_inline_with_the_reason(client, prod, farm, reason):
    text = page(client, network="prod", farm=farm)
    assert message(text, "farm") == reason
    assert re.search(r'id="id_farm"[^>]*aria-invalid="true"', text, re.S)
    assert download_links(text) == {}
    assert "farmer_id=" not in text


def test_farm_id_reasons_say_what_is_wrong():
    assert "digits only" in NOT_A_NUMBER
    assert "4294967295" in OUT_OF_RANGE


def test_missing_farm_parameter_is_refused_like_an_empty_one(client, prod):
    text = page(client, network="prod")
    assert message(text, "farm") == "Enter your farm ID (a number)."


def test_largest_farm_id_is_accepted(client, prod):
    text = page(client, network="prod", farm="4294967295")
    assert download_links(text)["iso"] == "/iso/prod/4294967295"


def test_farm_id_with_leading_zeros_links_to_the_plain_number(client, prod):
    text = page(client, network="prod", farm=" 001234 ")
    assert download_links(text)["iso"] == "/iso/prod/1234"


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ("console=ttyS0;reboot", "(U+003B) is not allowed in kernel arguments"),
        ("a${b}", "(U+0024) is not allowed in kernel arguments"),
        ("runmode=dev", "runmode= is set by the service"),
        ("quiet farmer_id=9", "farmer_id= is set by the service"),
        ("x" * 513, "513 characters long, the limit is 512"),
    ],
)
def test_bad_extra_arguments_are_refused_inline_with_the_urls_reason(client, prod, extra, fragment):
    text = page(client, network="prod", farm="1234", extra=extra)
    assert message(text, "extra") == sentence(clean_kernel_args_error(extra))
    assert fragment in message(text, "extra")
    assert re.search(r'id="id_extra"[^>]*aria-invalid="true"', text, re.S)
    assert download_links(text) == {}


def test_extra_arguments_a_link_cannot_carry_are_refused(client, prod):
    # "a_/b" would be written a____b, which the server reads back as "a/_b".
    text = page(client, network="prod", farm="1234", extra="a_/b")
    assert message(text, "extra").startswith(
        "An underscore next to a slash cannot be written in a download link"
    )
    assert download_links(text) == {}


def service_reason(slug: str) -> str:
    """Why `/ipxe/<slug>/...` refuses the network, as the portal words it."""
    with pytest.raises(BootError) as refused:
        network_kernel(find_network(slug))
    return sentence(refused.value.message)


def test_missing_network_is_refused_inline(client, prod):
    text = page(client, network="", farm="1234")
    assert message(text, "network") == "Choose the network your server will join."
    assert download_links(text) == {}


@pytest.mark.parametrize(
    ("network", "fragment"),
    [
        ("nope", "nknown network"),
        ("PROD", "lower-case letters, digits"),
        ("qa", "no kernel assigned yet"),
    ],
)
def test_bad_network_is_refused_inline_with_the_urls_reason(client, prod, network, fragment):
    text = page(client, network=network, farm="1234")
    assert message(text, "network") == service_reason(network)
    assert fragment in message(text, "network")
    assert download_links(text) == {}


def test_inactive_network_is_refused_even_by_url(client, prod):
    Network.objects.filter(slug="prod").update(active=False)
    text = page(client, network="prod", farm="1234")
    assert message(text, "network") == service_reason("prod")
    assert "not active" in message(text, "network")
    assert download_links(text) == {}


def test_every_invalid_field_is_reported_at_once(client, prod):
    text = page(client, network="nope", farm="0", extra="a;b")
    assert message(text, "network") and message(text, "farm") and message(text, "extra")


def test_submitted_values_are_kept_in_the_fields(client, prod):
    text = page(client, network="prod", farm="12a", extra="console=ttyS0")
    assert re.search(r'id="id_farm"[^>]*value="12a"', text, re.S)
    assert re.search(r'id="id_extra"[^>]*value="console=ttyS0"', text, re.S)


# --- farms ---------------------------------------------------------------------------------


def test_known_farm_shows_its_name(client, prod):
    Farm.objects.create(farmer_id=1234, name="Ghent datacenter")
    text = page(client, network="prod", farm="1234")
    assert message(text, "farm") == "Farm 1234: Ghent datacenter"
    assert "echo Farm........: 1234 Ghent datacenter" in text


def test_unknown_farm_is_accepted_with_a_hint_to_check_the_number(client, prod):
    text = page(client, network="prod", farm="777")
    assert message(text, "farm").startswith("Farm 777 is not registered here; check the number")
    assert download_links(text)["iso"] == "/iso/prod/777"


def test_disabled_farm_is_refused(client, prod):
    Farm.objects.create(farmer_id=1234, name="Old", active=False)
    text = page(client, network="prod", farm="1234")
    # The service's own reason, the one a node's console shows for the same farm.
    assert message(text, "farm") == "Farm 1234 is disabled on this boot service."
    assert download_links(text) == {}


def test_farm_name_is_escaped(client, prod):
    Farm.objects.create(farmer_id=1234, name="<script>alert(1)</script>")
    raw = client.get("/", {"network": "prod", "farm": "1234"}).content.decode()
    assert "<script>alert(1)</script>" not in raw
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in raw


# --- the preview endpoint portal.js uses ---------------------------------------------------


def test_preview_endpoint_returns_script_links_and_messages(client, prod):
    Farm.objects.create(farmer_id=1234, name="Ghent datacenter")
    response = client.get("/portal/preview", {"network": "prod", "farm": "1234", "extra": ""})
    assert response.status_code == 200
    assert "no-cache" in response["Cache-Control"]
    answer = response.json()
    assert answer["ready"] is True
    assert answer["errors"] == {}
    assert same_script(answer["script"], client.get("/ipxe/prod/1234").content.decode())
    assert answer["field_messages"]["farm"] == {
        "kind": "info",
        "text": "Farm 1234: Ghent datacenter",
    }
    assert download_links(html.unescape(answer["html"])) == {
        fmt: f"/{fmt}/prod/1234" for fmt in IMAGES
    }


def test_preview_endpoint_reports_each_invalid_field(client, prod):
    answer = client.get(
        "/portal/preview", {"network": "prod", "farm": "0", "extra": "runmode=x"}
    ).json()
    assert answer["ready"] is False
    assert answer["script"] == ""
    assert answer["errors"] == {
        "farm": OUT_OF_RANGE,
        "extra": sentence(clean_kernel_args_error("runmode=x")),
    }
    assert answer["field_messages"]["farm"]["kind"] == "error"
    assert download_links(html.unescape(answer["html"])) == {}


def test_host_the_service_may_not_name_is_reported_instead_of_links(client, prod, settings):
    settings.ALLOWED_HOSTS = ["*"]
    text = page(client, network="prod", farm="1234")
    assert "this host name is not one the service may name in boot scripts" in text.lower()
    assert download_links(text) == {}


# --- arm64 machines ------------------------------------------------------------------------


def test_each_card_says_which_machines_it_suits_and_uefi_offers_the_arm64_file(client, prod):
    text = page(client, network="prod", farm="1234")
    cards = dict(re.findall(r'data-format="([\w-]+)">.*?<p class="machines">For: ([^<]*)</p>',
                            text, re.S))  # fmt: skip
    assert "arm64 servers" in cards["iso"] and "arm64 servers" in cards["usb"]
    assert "arm64 servers" in cards["uefimg"]
    assert cards["krn"] == "PCs (x86-64) booting with BIOS only."
    arm64 = (
        'href="/uefi/prod/1234?arch=arm64" data-download data-filename="zos-prod-1234-arm64.efi"'
    )
    assert arm64 in text
    response = client.head("/uefi/prod/1234?arch=arm64")
    assert response["Content-Disposition"] == 'attachment; filename="zos-prod-1234-arm64.efi"'


def test_a_network_with_only_an_arm64_kernel_can_be_chosen(client, kernel, make_kernel):
    arm = make_kernel("zero-os-arm64.efi", b"arm", arch="arm64")
    network = Network.objects.create(slug="armnet", name="ARM network")
    network.switch_kernel(arm, arch="arm64")
    text = page(client)
    label = re.search(r'id="network-armnet"[^>]*>', text).group(0)
    assert "disabled" not in label
    assert "arm64 servers only; arm64 servers boot <code>zero-os-arm64.efi</code>" in text
    assert download_links(page(client, network="armnet", farm="7"))["iso"] == "/iso/armnet/7"
