"""Validation of everything a node, a farmer or an operator can type into a boot script.

Values validated here end up inside an iPXE script and on a kernel command line, so the rules
are an allow-list: anything not explicitly allowed is refused with a one-line reason.
"""

from __future__ import annotations

import re
import string

from django.core.exceptions import ValidationError

# What real kernel arguments use. Deliberately excludes everything iPXE gives meaning to
# (`$`, `{`, `}`, `&`, `|`, `#`, quotes, backslash) and every control character.
KERNEL_ARG_CHARS = frozenset(string.ascii_letters + string.digits + " _.,:=+-/@%")
KERNEL_ARGS_MAX_LENGTH = 512
# Zero-OS reads the first runmode= and farmer_id=; they come from the URL or the database.
RESERVED_KERNEL_ARGS = ("runmode", "farmer_id")
# A path segment cannot hold "/", so links in the field spell it "___".
SLASH_ESCAPE = "___"

FARMER_ID_MAX = 2**32 - 1  # Zero-OS parses the farm ID as an unsigned 32-bit integer.
_FARMER_ID_RE = re.compile(r"[0-9]+")

_MAC_RES = (
    re.compile(r"(?:[0-9a-f]{2}:){5}[0-9a-f]{2}"),
    re.compile(r"(?:[0-9a-f]{2}-){5}[0-9a-f]{2}"),
    re.compile(r"[0-9a-f]{12}"),
)
_SPACES_RE = re.compile(" {2,}")
KERNEL_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,199}")
NETWORK_SLUG_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")


_CHAR_NAMES = {
    " ": "a space", "\n": "a newline", "\r": "a carriage return", "\t": "a tab",
    ";": "a semicolon", "'": "a quote", '"': "a double quote", "`": "a backquote",
    "$": "a dollar sign", "&": "an ampersand", "|": "a vertical bar", "<": "a less-than sign",
    ">": "a greater-than sign", "\\": "a backslash", "{": "a brace", "}": "a brace",
    "[": "a bracket", "]": "a bracket", "!": "an exclamation mark", "*": "an asterisk",
    "?": "a question mark", "#": "a hash sign", "~": "a tilde", "^": "a caret",
    "(": "a parenthesis", ")": "a parenthesis",
}  # fmt: skip


def describe_char(char: str) -> str:
    """Name a character in words, never reproducing it: the message is echoed on consoles,
    which show only plain letters and a little punctuation."""
    name = _CHAR_NAMES.get(char, "a character")
    return f"{name} (U+{ord(char):04X})"


def normalise_kernel_args(raw: str) -> str:
    """Undo the `___` escape and collapse runs of spaces (same args, same script bytes).

    Only spaces are collapsed: a newline or tab must reach validation and be refused.
    """
    return _SPACES_RE.sub(" ", raw.replace(SLASH_ESCAPE, "/")).strip(" ")


def validate_kernel_args(value: str) -> None:
    """Refuse kernel arguments that could be anything but kernel arguments."""
    if len(value) > KERNEL_ARGS_MAX_LENGTH:
        raise ValidationError(
            f"kernel arguments are {len(value)} characters long, the limit is "
            f"{KERNEL_ARGS_MAX_LENGTH}",
            code="too_long",
        )
    for char in value:
        if char not in KERNEL_ARG_CHARS:
            raise ValidationError(
                f"{describe_char(char)} is not allowed in kernel arguments, use letters, digits, "
                "space and _ . , : = + - / @ %",
                code="bad_character",
            )
    for token in value.split():
        key = token.split("=", 1)[0]
        if key in RESERVED_KERNEL_ARGS:
            raise ValidationError(
                f"{key}= is set by the service from the network and farm, remove it from the "
                "extra arguments",
                code="reserved",
            )


def clean_kernel_args(raw: str) -> str:
    """Normalise then validate; the value returned is what goes on the command line."""
    value = normalise_kernel_args(raw)
    validate_kernel_args(value)
    return value


def parse_farmer_id(raw: str) -> int:
    """A farm ID is 1 to 10 digits and fits Zero-OS's unsigned 32-bit integer, 0 excluded."""
    if not _FARMER_ID_RE.fullmatch(raw):
        raise ValidationError("farm ID must be a number (digits only)", code="not_a_number")
    # Length first: a long run of digits is a number, just too large (and int() of thousands
    # of digits is refused by Python itself).
    value = int(raw) if len(raw) <= 10 else FARMER_ID_MAX + 1
    if not 1 <= value <= FARMER_ID_MAX:
        raise ValidationError(f"farm ID must be between 1 and {FARMER_ID_MAX}", code="out_of_range")
    return value


def normalise_mac(raw: str) -> str:
    """Accept `52:54:00:ab:cd:ef`, `52-54-00-AB-CD-EF` or `525400abcdef`; return colon form."""
    value = raw.strip().lower()
    if not any(pattern.fullmatch(value) for pattern in _MAC_RES):
        raise ValidationError(
            "MAC address must look like 52:54:00:ab:cd:ef, 52-54-00-ab-cd-ef or 525400abcdef",
            code="bad_mac",
        )
    digits = value.replace(":", "").replace("-", "")
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def validate_mac(value: str) -> None:
    normalise_mac(value)


#: `/kernel/<name>.sig` is a kernel's release signature: no kernel or link may end so.
SIGNATURE_SUFFIX = ".sig"
#: `/kernel/net/...` and `/kernel/sha256/...` are the network and content addresses.
RESERVED_KERNEL_NAMES = frozenset({"net", "sha256"})
#: The codes of validate_kernel_name's refusals: a malformed name (400), not a conflict (409).
NAME_REFUSALS = ("bad_kernel_name", "reserved_name")


def validate_kernel_name(value: str) -> None:
    """Names kernels and branch links are served at (`/kernel/<name>`), so also file names:
    no path separators, nothing empty, and nothing that collides with another URL of
    `/kernel/` (a signature's `.sig`, the `net` and `sha256` addresses)."""
    if not KERNEL_NAME_RE.fullmatch(value):
        raise ValidationError(
            "kernel name must start with a letter or digit and use only letters, digits and "
            ". _ + - (at most 200 characters)",
            code="bad_kernel_name",
        )
    if value.lower().endswith(SIGNATURE_SUFFIX):
        raise ValidationError(
            f"a name ending in {SIGNATURE_SUFFIX} would hide the release signature served at "
            f"/kernel/NAME{SIGNATURE_SUFFIX}: choose another",
            code="reserved_name",
        )
    if value.lower() in RESERVED_KERNEL_NAMES:
        raise ValidationError(
            f"{value} is reserved for /kernel/{value.lower()}/...: choose another name",
            code="reserved_name",
        )


def validate_network_slug(value: str) -> None:
    if not NETWORK_SLUG_RE.fullmatch(value):
        raise ValidationError(
            "network names are lower-case letters, digits and dashes, at most 32 characters",
            code="bad_network",
        )
