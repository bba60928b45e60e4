"""NHS numbers: the modulus 11 check, normalisation and synthetic test numbers.

An NHS number is ten digits; the tenth is a check digit over the first nine, computed with
weights 10, 9, ..., 2 (NHS Data Dictionary, "NHS Number"). A remainder that would give a check
digit of 10 means the nine digits can never start a valid number.

Stored identifiers must be exactly ten digits with no formatting; ``normalise_nhs_number`` is
for user input such as "943 476 5919". Synthetic data must come from the 999 range
(999 000 0000 - 999 999 9999), which NHS England reserves for testing and never issues to a
patient, so generated records can never collide with a real person.
"""

from __future__ import annotations

import random

_WEIGHTS = (10, 9, 8, 7, 6, 5, 4, 3, 2)
_SEPARATORS = str.maketrans("", "", " -")

TEST_RANGE_PREFIX = "999"


def _is_ascii_digits(value: str, length: int) -> bool:
    # str.isdigit alone accepts e.g. superscripts and Arabic-Indic digits; isascii rules them out.
    return len(value) == length and value.isascii() and value.isdigit()


def nhs_number_check_digit(nine_digits: str) -> int | None:
    """The check digit for the first nine digits, or None if no check digit can make them valid.

    Raises ValueError unless ``nine_digits`` is exactly nine ASCII digits.
    """
    if not isinstance(nine_digits, str) or not _is_ascii_digits(nine_digits, 9):
        raise ValueError("expected exactly nine digits")
    total = sum(w * (ord(c) - 48) for w, c in zip(_WEIGHTS, nine_digits, strict=True))
    check = 11 - total % 11
    if check == 11:
        return 0
    if check == 10:
        return None
    return check


def is_valid_nhs_number(value: str) -> bool:
    """True if ``value`` is exactly ten ASCII digits whose last digit is the modulus 11 check.

    Formatting (spaces, dashes) makes a value invalid: this is the test for a stored identifier.
    """
    if not isinstance(value, str) or not _is_ascii_digits(value, 10):
        return False
    check = nhs_number_check_digit(value[:9])
    return check is not None and check == ord(value[9]) - 48


def normalise_nhs_number(s: str) -> str | None:
    """``s`` with spaces and dashes removed, if that is a valid NHS number; otherwise None."""
    if not isinstance(s, str):
        return None
    candidate = s.strip().translate(_SEPARATORS)
    return candidate if is_valid_nhs_number(candidate) else None


def generate_nhs_number(rng: random.Random) -> str:
    """A valid NHS number in the 999 test range, drawn from ``rng`` (so seeded runs repeat)."""
    while True:
        nine = TEST_RANGE_PREFIX + f"{rng.randrange(1_000_000):06d}"
        check = nhs_number_check_digit(nine)
        # About one in eleven prefixes has no valid check digit; draw again.
        if check is not None:
            return nine + str(check)
