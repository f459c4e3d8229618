import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from provisioning.validators import (
    FARMER_ID_MAX,
    KERNEL_ARG_CHARS,
    KERNEL_ARGS_MAX_LENGTH,
    clean_kernel_args,
    normalise_mac,
    parse_farmer_id,
    validate_kernel_name,
)


@pytest.mark.parametrize(
    "raw",
    [
        "52:54:00:ab:cd:ef",
        "52-54-00-AB-CD-EF",
        "525400abcdef",
        "525400ABCDEF",
        " 52:54:00:AB:CD:EF ",
    ],
)
def test_every_accepted_mac_form_becomes_lower_case_colon_form(raw):
    assert normalise_mac(raw) == "52:54:00:ab:cd:ef"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "52:54:00:ab:cd",
        "52:54:00:ab:cd:eg",
        "52:54-00:ab:cd:ef",
        "525400abcdef0",
        "5254.00ab.cdef",
    ],
)
def test_malformed_macs_are_refused(raw):
    with pytest.raises(ValidationError):
        normalise_mac(raw)


@given(st.binary(min_size=6, max_size=6))
def test_any_mac_round_trips_through_all_forms(octets):
    colon = ":".join(f"{b:02x}" for b in octets)
    assert normalise_mac(colon.upper().replace(":", "-")) == colon
    assert normalise_mac(colon.replace(":", "")) == colon


@pytest.mark.parametrize(
    "raw,value", [("1", 1), ("1234", 1234), ("0001234", 1234), (str(FARMER_ID_MAX), FARMER_ID_MAX)]
)
def test_farm_ids_in_uint32_range_parse(raw, value):
    assert parse_farmer_id(raw) == value


@pytest.mark.parametrize(
    "raw", ["0", "-1", "12a", " 12", "4294967296", "99999999999", "1e5", "", "١٢٣"]
)
def test_farm_ids_outside_digits_or_uint32_are_refused(raw):
    with pytest.raises(ValidationError):
        parse_farmer_id(raw)


def test_triple_underscore_stands_for_slash_and_spaces_collapse():
    assert clean_kernel_args("console=ttyS0  root=___dev___sda ") == "console=ttyS0 root=/dev/sda"


@pytest.mark.parametrize(
    "raw,code",
    [
        ("a\nchain http://evil", "bad_character"),
        ("a && shell", "bad_character"),
        ("a || shell", "bad_character"),
        ("${net0/mac}", "bad_character"),
        ("a # comment", "bad_character"),
        ('a "b"', "bad_character"),
        ("a 'b'", "bad_character"),
        ("a\tb", "bad_character"),
        ("a\x00b", "bad_character"),
        ("a\\b", "bad_character"),
        ("a;reboot", "bad_character"),
        ("runmode=dev", "reserved"),
        ("x=1 farmer_id=9", "reserved"),
        ("a" * (KERNEL_ARGS_MAX_LENGTH + 1), "too_long"),
    ],
)
def test_hostile_kernel_args_are_refused_with_a_reason(raw, code):
    with pytest.raises(ValidationError) as info:
        clean_kernel_args(raw)
    assert info.value.code == code
    # One line, and a character that is hard to see is named by its code point.
    assert "\n" not in info.value.messages[0]
    if code == "bad_character":
        assert "U+" in info.value.messages[0] or info.value.messages[0].startswith(
            ("newline", "tab")
        )


@given(st.text(alphabet=sorted(KERNEL_ARG_CHARS - {" "}), min_size=1, max_size=50))
def test_args_from_the_allowed_alphabet_pass_unchanged(word):
    if word.split("=", 1)[0] in ("runmode", "farmer_id") or "___" in word:
        return
    assert clean_kernel_args(word) == word


@given(st.text(max_size=80))
def test_cleaned_args_only_ever_contain_allowed_characters(raw):
    try:
        value = clean_kernel_args(raw)
    except ValidationError:
        return
    assert set(value) <= KERNEL_ARG_CHARS
    assert len(value) <= KERNEL_ARGS_MAX_LENGTH


@pytest.mark.parametrize("name", ["../etc/passwd", ".hidden", "a/b", "", "a b", "x" * 201])
def test_kernel_names_that_could_escape_the_store_are_refused(name):
    with pytest.raises(ValidationError):
        validate_kernel_name(name)


@pytest.mark.parametrize("raw", ["99999999999", "9" * 5000])
def test_long_digit_runs_are_out_of_range_not_not_a_number(raw):
    with pytest.raises(ValidationError) as info:
        parse_farmer_id(raw)
    assert info.value.code == "out_of_range"
