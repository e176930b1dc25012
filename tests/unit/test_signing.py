"""The CME secure-logon signer against the known-answer vector of spec §1.5."""

from __future__ import annotations

import base64
import re

import pytest

from dropcopy_client.auth import CANONICAL_TAGS, SIGNATURE_METHOD, SigningError, canonical_logon, sign

# Spec §1.5, vector 1 (EPAM-T ItShouldCalculateAdditionalTagsCorrectly); a public test key, not a real one.
VECTOR_SECRET = "2HlZ7exg8jTKltXnURjKvm3GS5iF5n4ClzHiEm_ocv4"
VECTOR_FIELDS = {
    34: "1",
    49: "B08004N",
    50: "MSG",
    52: "20170623-14:48:42.855",
    57: "92",
    108: "60",
    142: "US,NY",
    369: "0",
    1603: "BRIO",
    1604: "8.0",
    1605: "ABC",
}
VECTOR_CANONICAL = "1\nB08004N\nMSG\n20170623-14:48:42.855\n92\n60\nUS,NY\n0\nBRIO\n8.0\nABC"
VECTOR_SIGNATURE = "oHZ2Dx1ihFAp7kHOFcJPkijm27xfApJFp-ZhsSCxr3s"
VECTOR_MAC_HEX = "a076760f1d62845029ee41ce15c24f9228e6dbbc5f029245a7e661b120b1af7b"


def test_canonical_string_matches_vector() -> None:
    assert canonical_logon(VECTOR_FIELDS) == VECTOR_CANONICAL


def test_canonical_ignores_fields_outside_the_eleven_and_keeps_their_order() -> None:
    fields = {**VECTOR_FIELDS, 35: "A", 56: "CME", 1400: SIGNATURE_METHOD}
    assert canonical_logon(dict(reversed(list(fields.items())))) == VECTOR_CANONICAL
    assert CANONICAL_TAGS == (34, 49, 50, 52, 57, 108, 142, 369, 1603, 1604, 1605)


def test_signature_matches_vector() -> None:
    assert sign(VECTOR_SECRET, VECTOR_CANONICAL) == VECTOR_SIGNATURE


def test_signature_is_the_raw_hmac_in_base64url_without_padding() -> None:
    signature = sign(VECTOR_SECRET, VECTOR_CANONICAL)
    raw = base64.urlsafe_b64decode(signature + "=")
    assert raw.hex() == VECTOR_MAC_HEX


def test_padded_secret_gives_the_same_signature() -> None:
    assert sign(VECTOR_SECRET + "=", VECTOR_CANONICAL) == VECTOR_SIGNATURE


def test_a_changed_field_changes_the_signature() -> None:
    fields = {**VECTOR_FIELDS, 52: "20170623-14:48:42.856"}
    assert sign(VECTOR_SECRET, canonical_logon(fields)) != VECTOR_SIGNATURE


@pytest.mark.parametrize("missing", [34, 50, 142, 369, 1605])
def test_missing_field_gives_an_empty_line(missing: int) -> None:
    fields = {tag: value for tag, value in VECTOR_FIELDS.items() if tag != missing}
    canonical = canonical_logon(fields)
    assert canonical.count("\n") == 10
    lines = canonical.split("\n")
    assert lines[CANONICAL_TAGS.index(missing)] == ""
    expected = [VECTOR_FIELDS[tag] if tag != missing else "" for tag in CANONICAL_TAGS]
    assert lines == expected


def test_no_fields_still_gives_ten_newlines() -> None:
    assert canonical_logon({}) == "\n" * 10


def test_signature_is_43_base64url_characters() -> None:
    for canonical in (VECTOR_CANONICAL, "", "\n" * 10, "x" * 1000):
        signature = sign(VECTOR_SECRET, canonical)
        assert len(signature) == 43
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", signature)


@pytest.mark.parametrize(
    "secret",
    ["QzXkP", "not*base64!", "äöü-secret-text", "", "    "],
    ids=["bad-length", "junk", "non-ascii", "empty", "blank"],
)
def test_invalid_secret_raises_signing_error_without_echoing_it(secret: str) -> None:
    with pytest.raises(SigningError) as info:
        sign(secret, VECTOR_CANONICAL)
    assert isinstance(info.value, ValueError)
    if secret.strip():
        assert secret not in str(info.value)
        assert secret not in repr(info.value)
    # Raised "from None": no chained exception carries the text either.
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__ or info.value.__context__ is None
