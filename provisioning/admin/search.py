"""What an operator types in a search box, read as the lists show it: a MAC in any form
(52:54:00:ab:cd:ef, 52-54-00-AB-CD-EF, 525400abcdef, a switch's 5254.00ab.cdef) or a part of
one, an address or a part of one, a farm ID or a part of a farm's name, a part of a kernel's
name, a sha256 or a prefix of one (the lists show its first 16 characters).

The boot history has millions of rows, so it is read by index only: a part of a MAC or an
address, a farm's name or a part of a kernel name is first looked up in the small tables that
hold them (latest boots, nodes, farms, kernels and their records), and the history is then
asked for those exact values, each an indexed lookup. A sha256 prefix is a range of the
indexed sha256 column.
"""

from __future__ import annotations

import ipaddress
import re

from django.core.exceptions import ValidationError
from django.db.models import Q, Value
from django.db.models.functions import Replace

from ..models import Farm, Kernel, KernelRecord, LatestBoot, Node
from ..validators import FARMER_ID_MAX, normalise_mac

SHA256_RE = re.compile(r"[0-9a-f]{64}")
#: A sha256 prefix shorter than this is too short to mean one kernel.
SHA256_PREFIX_MIN = 8
_DOTTED_MAC_RE = re.compile(r"[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}")
_MAC_PART_RE = re.compile(r"[0-9a-f:.\-]+")
_ADDRESS_PART_RE = re.compile(r"[0-9a-f.:]+")
_HEX_RE = re.compile(r"[0-9a-f]+")
#: How many machines, addresses or farms a part may stand for before the history is asked
#: for the part itself (such a part matches so many rows that a page of them comes at once).
RESOLVED_MAX = 500
NOTHING = Q(pk__in=[])


def full_mac(term: str) -> str | None:
    """The MAC (colon form) when the term is a whole one in any form, else None."""
    value = term.strip().lower()
    if _DOTTED_MAC_RE.fullmatch(value):
        value = value.replace(".", "")
    try:
        return normalise_mac(value)
    except ValidationError:
        return None


def canonical_mac(term: str) -> str:
    """A whole MAC in any form as the lists store it; any other term as it is."""
    return full_mac(term) or term


def full_address(term: str) -> str | None:
    try:
        return str(ipaddress.ip_address(term.strip()))
    except ValueError:
        return None


def farm_id(term: str) -> int | None:
    value = term.strip()
    if not (value.isascii() and value.isdigit() and len(value) <= 10):
        return None
    return int(value) if 1 <= int(value) <= FARMER_ID_MAX else None


def mac_digits(term: str) -> str | None:
    """The hex digits of a part of a MAC (4 to 12 of them, separators dropped), else None."""
    value = term.strip().lower()
    if not _MAC_PART_RE.fullmatch(value):
        return None
    digits = re.sub(r"[:.\-]", "", value)
    return digits if 4 <= len(digits) <= 12 and _HEX_RE.fullmatch(digits) else None


def address_part(term: str) -> str | None:
    """A part of an IPv4 or IPv6 address (digits and at least one dot or colon), else None."""
    value = term.strip().lower()
    if len(value) >= 3 and _ADDRESS_PART_RE.fullmatch(value) and (":" in value or "." in value):
        return value
    return None


def sha256_prefix(term: str) -> str | None:
    value = term.strip().lower()
    if SHA256_PREFIX_MIN <= len(value) <= 64 and _HEX_RE.fullmatch(value):
        return value
    return None


def macs_with(digits: str) -> list[str] | None:
    """The MACs of known machines (latest boots, nodes) holding these digits; None: more
    than RESOLVED_MAX."""
    found: set[str] = set()
    for model in (LatestBoot, Node):
        rows = (
            model.objects.annotate(_digits=Replace("mac", Value(":"), Value("")))
            .filter(_digits__contains=digits)
            .values_list("mac", flat=True)
        )
        found.update(rows[: RESOLVED_MAX + 1])
    return sorted(found) if len(found) <= RESOLVED_MAX else None


def addresses_with(part: str) -> list[str] | None:
    """The addresses machines were seen at that hold `part`; None: more than RESOLVED_MAX."""
    found = set(
        LatestBoot.objects.filter(client_ip__contains=part).values_list("client_ip", flat=True)[
            : RESOLVED_MAX + 1
        ]
    )
    found.update(
        Node.objects.filter(last_ip__contains=part).values_list("last_ip", flat=True)[
            : RESOLVED_MAX + 1
        ]
    )
    return sorted(found) if len(found) <= RESOLVED_MAX else None


def farms_named(term: str):
    """The farm IDs of farms whose name holds the term (a subquery: any number of farms)."""
    return Farm.objects.filter(name__icontains=term.strip()).values("farmer_id")


def kernel_names(term: str, *, by_sha256: bool = False) -> list[str]:
    """Names of kernels, present or removed, whose name holds the term (or, `by_sha256`,
    whose sha256 starts with it)."""
    value = term.strip()
    names = set(Kernel.objects.filter(name__icontains=value).values_list("name", flat=True))
    names.update(
        KernelRecord.objects.filter(kernel_name__icontains=value).values_list(
            "kernel_name", flat=True
        )
    )
    prefix = sha256_prefix(value) if by_sha256 else None
    if prefix:
        names.update(
            Kernel.objects.filter(sha256__startswith=prefix).values_list("name", flat=True)
        )
    return sorted(names)


def digests_starting(prefix: str) -> list[str]:
    """The sha256 of the kernels, present or removed, that start with `prefix`."""
    found = set(Kernel.objects.filter(sha256__startswith=prefix).values_list("sha256", flat=True))
    found.update(
        KernelRecord.objects.filter(sha256__startswith=prefix).values_list("sha256", flat=True)
    )
    return sorted(found)


def _one_of(field: str, values: list) -> Q:
    """One value is an equality, which reads the history's (column, time) index in the list's
    order; several are an IN."""
    return Q(**{field: values[0]}) if len(values) == 1 else Q(**{f"{field}__in": values})


def _one_machine(value: str) -> Q | None:
    """Every row for an empty term, one machine's for a whole MAC or address; None when the
    term is neither and its other meanings are to be read."""
    if not value:
        return Q()
    mac = full_mac(value)
    if mac:
        return Q(mac=mac)
    address = full_address(value)
    if address:
        return Q(client_ip=address)
    return None


def boot_event_q(term: str) -> Q:
    """What the boot history's search box finds: the term's meanings that name something
    known, each an indexed lookup of one column by exact values (a page of a million rows is
    then read in the index's order, or sorted from the few rows that match)."""
    value = term.strip()
    exact = _one_machine(value)
    if exact is not None:
        return exact
    if SHA256_RE.fullmatch(value.lower()):
        return Q(kernel_sha256=value.lower())
    found = []
    farms = []
    farm = farm_id(value)
    if farm is not None:
        farms.append(farm)
    elif not value.isdigit():
        named = list(farms_named(value).values_list("farmer_id", flat=True)[: RESOLVED_MAX + 1])
        if len(named) > RESOLVED_MAX:
            found.append(Q(farmer_id__in=farms_named(value)))
        farms += named[:RESOLVED_MAX]
    if farms:
        found.append(_one_of("farmer_id", farms))
    prefix = sha256_prefix(value)
    digests = digests_starting(prefix) if prefix else []
    if digests:
        found.append(_one_of("kernel_sha256", digests))
    digits = mac_digits(value)
    if digits:
        macs = macs_with(digits)
        if macs is None and len(digits) % 2 == 0:
            # So many machines that their rows come at once: the part itself.
            pairs = ":".join(digits[i : i + 2] for i in range(0, len(digits), 2))
            found.append(Q(mac__contains=pairs))
        elif macs:
            found.append(_one_of("mac", macs))
    part = address_part(value)
    if part:
        addresses = addresses_with(part)
        if addresses is None:
            found.append(Q(client_ip__contains=part))
        elif addresses:
            found.append(_one_of("client_ip", addresses))
    names = kernel_names(value)
    if names:
        found.append(_one_of("kernel_name", names))
    if not found:
        # Nothing known by that: a removed kernel's sha256 prefix or name, read as typed. Every
        # digest starting with the prefix sorts between it and the prefix followed by a
        # character above any hex digit: a range of the sha256 index.
        if prefix:
            return Q(kernel_sha256__gte=prefix, kernel_sha256__lt=prefix + "g")
        return Q(kernel_name=value)
    query = found[0]
    for more in found[1:]:
        query |= more
    return query


def latest_boot_q(term: str) -> Q:
    """What the latest boots' search box finds (one row per machine: a few thousand)."""
    value = term.strip()
    exact = _one_machine(value)
    if exact is not None:
        return exact
    found = Q(kernel_name__icontains=value)
    farm = farm_id(value)
    if farm is not None:
        found |= Q(farmer_id=farm)
    digits = mac_digits(value)
    if digits:
        macs = macs_with(digits)
        found |= Q(mac__in=macs) if macs is not None else Q(mac__icontains=value)
    part = address_part(value)
    if part:
        found |= Q(client_ip__contains=part)
    if not value.isdigit():
        found |= Q(farmer_id__in=farms_named(value))
    names = kernel_names(value, by_sha256=True)
    if names:
        found |= Q(kernel_name__in=names)
    return found


def node_q(term: str) -> Q:
    """What the nodes' search box finds beyond the admin's own search: a whole MAC in any
    form, and a part of one in any form."""
    value = term.strip()
    mac = full_mac(value)
    if mac:
        return Q(mac=mac)
    digits = mac_digits(value)
    if digits:
        macs = macs_with(digits)
        return Q(mac__in=macs) if macs is not None else NOTHING
    return NOTHING
