"""NHS number modulus 11 check, normalisation and synthetic test-range generation."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carelight.identity.nhs_number import (
    generate_nhs_number,
    is_valid_nhs_number,
    nhs_number_check_digit,
    normalise_nhs_number,
)


def reference_check_digit(nine: str) -> int | None:
    """The NHS Data Dictionary algorithm written out longhand, independent of the module."""
    total = 0
    for position, digit in enumerate(nine):
        total += int(digit) * (10 - position)
    remainder = total % 11
    check = 11 - remainder
    if check == 11:
        return 0
    if check == 10:
        return None
    return check


# Worked by hand: 9434765919 -> 9*10+4*9+3*8+4*7+7*6+6*5+5*4+9*3+1*2 = 299, 299 % 11 = 2,
# 11 - 2 = 9. 9990000018 -> 9*10+9*9+9*8+1*2 = 245, 245 % 11 = 3, 11 - 3 = 8.
# 4010232137 -> 4*10+1*8+2*6+3*5+2*4+1*3+3*2 = 92, 92 % 11 = 4, 11 - 4 = 7.
@pytest.mark.parametrize("number", ["9434765919", "9990000018", "4010232137"])
def test_known_valid_numbers(number):
    assert is_valid_nhs_number(number)


def test_check_digit_of_known_numbers():
    assert nhs_number_check_digit("943476591") == 9
    assert nhs_number_check_digit("999000001") == 8


def test_remainder_zero_gives_check_digit_zero():
    # The first 999 prefix whose weighted sum is a multiple of 11, found with the longhand version.
    nine = next(f"999{n:06d}" for n in range(10**6) if reference_check_digit(f"999{n:06d}") == 0)
    assert nhs_number_check_digit(nine) == 0
    assert is_valid_nhs_number(nine + "0")


def test_check_digit_ten_means_no_valid_number():
    # 999000000: 9*10+9*9+9*8 = 243, 243 % 11 = 1, 11 - 1 = 10: these nine digits cannot start one.
    assert nhs_number_check_digit("999000000") is None
    assert not any(is_valid_nhs_number("999000000" + str(d)) for d in range(10))


@pytest.mark.parametrize("number", ["9434765918", "9434765910", "9990000019", "9990000010"])
def test_wrong_check_digit(number):
    assert not is_valid_nhs_number(number)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "943476591",
        "94347659190",
        "943 476 5919",
        "943-476-5919",
        " 9434765919",
        "9434765919\n",
        "94347659l9",
        "".join(chr(0xFF10 + int(c)) for c in "9434765919"),  # fullwidth digits
        "".join(chr(0x0660 + int(c)) for c in "9434765919"),  # Arabic-Indic
        "+943476591",
        None,
        9434765919,
    ],
)
def test_length_and_format(value):
    assert not is_valid_nhs_number(value)


@pytest.mark.parametrize(
    "bad",
    ["12345678", "1234567890", "12345678a", "", None, "".join(chr(0xFF10 + d) for d in range(9))],
)
def test_check_digit_needs_nine_digits(bad):
    with pytest.raises(ValueError):
        nhs_number_check_digit(bad)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("943 476 5919", "9434765919"),
        ("943-476-5919", "9434765919"),
        ("  9434765919 ", "9434765919"),
        ("9434765919", "9434765919"),
        ("943 476 5918", None),
        ("943.476.5919", None),
        ("", None),
        (None, None),
    ],
)
def test_normalise(raw, expected):
    assert normalise_nhs_number(raw) == expected


@given(st.integers(min_value=0, max_value=2**32))
def test_generated_numbers_are_valid_and_in_the_999_test_range(seed):
    number = generate_nhs_number(random.Random(seed))
    assert is_valid_nhs_number(number)
    assert number.startswith("999") and 9990000000 <= int(number) <= 9999999999


def test_generation_is_deterministic_for_a_seed_and_varied():
    first = [generate_nhs_number(random.Random(42)) for _ in range(3)]
    assert len(set(first)) == 1
    rng = random.Random(42)
    assert len({generate_nhs_number(rng) for _ in range(200)}) > 190


@given(st.text(alphabet="0123456789", min_size=9, max_size=9))
def test_check_digit_matches_the_longhand_algorithm(nine):
    assert nhs_number_check_digit(nine) == reference_check_digit(nine)
    check = reference_check_digit(nine)
    for last in "0123456789":
        assert is_valid_nhs_number(nine + last) == (check is not None and int(last) == check)


@given(
    st.integers(min_value=0, max_value=2**32),
    st.integers(min_value=0, max_value=9),
    st.integers(min_value=1, max_value=9),
)
def test_changing_any_single_digit_makes_a_valid_number_invalid(seed, position, delta):
    # Every weight (10..2, and 1 for the check digit) is non-zero mod 11 and 11 is prime, so a
    # single-digit change of 1..9 always changes the weighted sum mod 11.
    number = generate_nhs_number(random.Random(seed))
    digit = (int(number[position]) + delta) % 10
    changed = number[:position] + str(digit) + number[position + 1 :]
    assert changed != number
    assert not is_valid_nhs_number(changed)
