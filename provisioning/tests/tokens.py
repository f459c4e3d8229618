"""Boot scripts carry a ticket of their own (provisioning.tickets): compare them without it."""

import re

_TOKEN = re.compile(rb"(?<=/boot-report/)[0-9a-f.]+|(?<=&boot=)[0-9a-f.]+")


def without_tokens(script: bytes | str) -> bytes:
    """The script with each ticket replaced by TOKEN."""
    data = script.encode() if isinstance(script, str) else script
    return _TOKEN.sub(b"TOKEN", data)


def same_script(one: bytes | str, other: bytes | str) -> bool:
    """The same script but for each boot's own ticket."""
    return without_tokens(one) == without_tokens(other)
