"""CME key files: parsing, key selection and expiry, environment variables, writing, secret hygiene.

Every key here is fake: random bytes generated for these tests, or the public EPAM test vector of spec §1.5.
"""

from __future__ import annotations

import base64
import copy
import datetime
import logging
import os
import pickle
import re
import stat
from pathlib import Path

import pytest

from dropcopy_client.auth import (
    ENV_ACCESS_KEY_ID,
    ENV_SECRET_KEY,
    EXPIRY_WARNING_DAYS,
    ApiKey,
    KeyFile,
    KeySelection,
    SecretKey,
    canonical_logon,
    decode_secret,
    generate_key,
    keys_from_env,
    load_key_file,
    parse_key_file,
    select_key,
    sign,
    write_key_file,
)
from dropcopy_client.errors import ConfigError, KeyExpiredError, KeyFileError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "keys"
TODAY = datetime.date(2025, 6, 1)
D = datetime.date.fromisoformat

# Fake secrets (32 random bytes, base64url, 43 characters).
SECRET_A = "pb9IoUoRl-6sP3vnJZPv-WqzY97oXAZXFXfSuzG47OM"
SECRET_B = "BPd3SV2JtDs0oLPaek5sxNDenTFQV6zehlUmLnqMzU0"
SECRET_C = "rFkWgitRl5aFkn35uiCn_DYK-Ai0Ch0VOS-giPrPNKk"
SECRET_24_BYTES = "mZKH75IEixj98XqI-YSIHgvxCe04vjrX"

# The secrets of tests/fixtures/keys/keys.txt, in file order.
FIXTURE_SECRETS = (
    "lw4sXvTSs-DV4W7Za4hUaqmFQwqPL2XbCTkI-CG-8H8",
    "g7mmxR8vWiKstizNU4duAFxlloZItR2fCzrSwmfinMg",
    "gPN9LfWbAiHboKinKtZ_b7r4t7l6EV9NpgESaSw1Zaw",
    "1ZeOjOXec_P_tTjAK4T1FmCbNK5YwFsbkIZrRF3U5iw",
    "h3J0S5Vceu3Znhhiw9ciWwuIPl8ABsN_dZk6bbR1nyQ",
)

# Column offsets of CME's download (spec §1.9): 0, 21, 52, 103, 124, 145.
WIDTHS = (21, 31, 51, 21, 21, 21)
NAMES = ("Session ID", "Access ID", "Secret Key", "Creation Date", "Expiration Date", "Environment")


def fixed(*cells: str) -> str:
    return "".join(cell.ljust(width) for cell, width in zip(cells, WIDTHS, strict=False))


HEADER = fixed(*NAMES)
HEADER_NO_ENV = fixed(*NAMES[:5])


def row(
    session: str = "X12",
    access: str = "AbCdEfGhIjKlMnOpQrSt",
    secret: str = SECRET_A,
    created: str = "2025-01-15",
    expires: str = "2026-01-15",
    environment: str | None = "NEWRELEASE",
) -> str:
    cells = [session, access, secret, created, expires]
    if environment is not None:
        cells.append(environment)
    return fixed(*cells)


def key(
    session: str = "X12",
    access: str = "AbCdEfGhIjKlMnOpQrSt",
    *,
    created: str | None = "2025-01-15",
    expires: str | None = "2026-01-15",
    environment: str | None = None,
    secret: str = SECRET_A,
    source: str = "keys.txt",
    line: int | None = 2,
) -> ApiKey:
    return ApiKey(
        session_id=session,
        access_key_id=access,
        secret=SecretKey(secret),
        created=None if created is None else D(created),
        expires=None if expires is None else D(expires),
        environment=environment,
        source=source,
        line=line,
    )


def assert_no_secret(
    exc: BaseException, secrets: tuple[str, ...], caplog: pytest.LogCaptureFixture | None = None
) -> None:
    texts = [str(exc), repr(exc), *(str(arg) for arg in exc.args)]
    if caplog is not None:
        texts += [record.getMessage() for record in caplog.records]
        texts.append(caplog.text)
    for secret in secrets:
        for fragment in {secret, secret[:12], secret[-12:]}:
            for text in texts:
                assert fragment not in text
    # Nothing chained either (a ValueError from date parsing or base64 could quote the value).
    assert exc.__cause__ is None
    assert exc.__context__ is None or exc.__suppress_context__


# ------------------------------------------------------------------------------------------------------------
# Parsing good files


def test_fixture_with_several_rows_sessions_and_blank_lines() -> None:
    key_file = load_key_file(FIXTURES / "keys.txt")
    assert isinstance(key_file, KeyFile)
    assert key_file.path == str(FIXTURES / "keys.txt")
    assert [k.session_id for k in key_file.keys] == ["X12", "X12", "U89", "K92", "K92"]
    assert [k.access_key_id for k in key_file.keys] == [
        "Q1p78EsswN6LLh9mTSeR",
        "DhMG0HnZEEyiT6RSLd2a",
        "XKm2nhULLJXMJGTe6fdM",
        "6yJP0MdxxAvYpSRLKZki",
        "IaTzP8A8aGLRTKMQlXU8",
    ]
    assert [k.secret.reveal() for k in key_file.keys] == list(FIXTURE_SECRETS)
    assert [k.line for k in key_file.keys] == [3, 5, 7, 9, 11]
    assert [k.environment for k in key_file.keys] == ["NEWRELEASE"] * 3 + ["CERT", "NEWRELEASE"]
    first = key_file.keys[0]
    assert first.created == D("2024-06-10")
    assert first.expires == D("2025-06-20")
    assert first.source == str(FIXTURES / "keys.txt")


def test_fixture_without_environment_column() -> None:
    key_file = load_key_file(FIXTURES / "keys_no_environment.txt")
    assert [k.session_id for k in key_file.keys] == ["X12", "U89"]
    assert all(k.environment is None for k in key_file.keys)
    assert [k.line for k in key_file.keys] == [2, 3]
    # A key without an Environment column serves any environment.
    assert select_key(key_file.keys, "U89004N", "CERT", TODAY).key.access_key_id == "LIrh7lU5K6kQ1tWR8SHo"


def test_epam_layout_parses_and_signs_the_spec_vector() -> None:
    """The exact text of EPAM's ItShouldCalculateAdditionalTagsCorrectly, then the §1.5 signature."""
    text = (
        "Session ID           Access ID                      Secret Key                         "
        "                Creation Date        Expiration Date      Environment          \n"
        "B08                  oNDxM33uE81ohWuVRtWT           "
        "2HlZ7exg8jTKltXnURjKvm3GS5iF5n4ClzHiEm_ocv4        2018-01-23           2059-01-23   "
        "        NEWRELEASE           \n" + "\n"
    )
    key_file = parse_key_file(text, "epam.txt")
    selection = select_key(key_file.keys, "B08004N", "NewRelease", TODAY)
    assert selection.key.access_key_id == "oNDxM33uE81ohWuVRtWT"
    fields = {
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
    signature = sign(selection.key.secret.reveal(), canonical_logon(fields))
    assert signature == "oHZ2Dx1ihFAp7kHOFcJPkijm27xfApJFp-ZhsSCxr3s"


def test_last_value_without_trailing_spaces() -> None:
    text = HEADER.rstrip() + "\n" + row().rstrip() + "\n" + row("U89", secret=SECRET_B).rstrip()
    keys = parse_key_file(text).keys
    assert [k.session_id for k in keys] == ["X12", "U89"]
    assert keys[1].environment == "NEWRELEASE"
    assert keys[1].secret == SecretKey(SECRET_B)


def test_crlf_and_bom_parse_like_lf() -> None:
    lf_text = (FIXTURES / "keys.txt").read_text(encoding="utf-8")
    crlf_text = "\ufeff" + lf_text.replace("\n", "\r\n")
    assert parse_key_file(crlf_text, "k") == parse_key_file(lf_text, "k")


def test_crlf_and_bom_from_disk(tmp_path: Path) -> None:
    path = tmp_path / "keys.txt"
    path.write_bytes(b"\xef\xbb\xbf" + (HEADER + "\r\n\r\n" + row() + "\r\n").encode())
    keys = load_key_file(path).keys
    assert len(keys) == 1
    assert keys[0].line == 3
    assert keys[0].environment == "NEWRELEASE"
    assert keys[0].secret.reveal() == SECRET_A


def test_header_spacing_and_case_are_lenient() -> None:
    header = fixed(
        "SESSION  ID", "access\tid", "Secret   Key", "creation date", "EXPIRATION\t DATE", "environment"
    )
    keys = parse_key_file(header + "\n" + row() + "\n").keys
    assert keys[0].access_key_id == "AbCdEfGhIjKlMnOpQrSt"
    assert keys[0].expires == D("2026-01-15")


def place(cells: list[tuple[int, str]]) -> str:
    text = ""
    for offset, cell in cells:
        assert len(text) < offset or not text
        text = text.ljust(offset) + cell
    return text


def test_columns_are_found_by_header_position_not_fixed_offsets() -> None:
    offsets = (0, 11, 32, 77, 91, 107)
    header = place(list(zip(offsets, NAMES, strict=True)))
    data = place(
        list(
            zip(
                offsets,
                ("X12", "AbCdEfGhIjKlMnOp", SECRET_A, "2025-01-15", "2026-01-15", "cert"),
                strict=True,
            )
        )
    )
    (parsed,) = parse_key_file(header + "\n" + data).keys
    assert parsed.access_key_id == "AbCdEfGhIjKlMnOp"
    assert parsed.secret.reveal() == SECRET_A
    assert parsed.expires == D("2026-01-15")
    assert parsed.environment == "CERT"


def test_columns_may_come_in_any_order() -> None:
    offsets = (0, 15, 60, 85, 100, 120)
    names = ("Environment", "Secret Key", "Access ID", "Session ID", "Expiration Date", "Creation Date")
    values = ("CERT", SECRET_A, "AbCdEfGhIjKlMnOpQrSt", "X12", "2026-01-15", "2025-01-15")
    header = place(list(zip(offsets, names, strict=True)))
    data = place(list(zip(offsets, values, strict=True)))
    (parsed,) = parse_key_file(header + "\n" + data).keys
    assert (parsed.session_id, parsed.access_key_id, parsed.environment) == (
        "X12",
        "AbCdEfGhIjKlMnOpQrSt",
        "CERT",
    )
    assert (parsed.created, parsed.expires) == (D("2025-01-15"), D("2026-01-15"))


def test_empty_environment_cell_matches_any_environment() -> None:
    text = HEADER + "\n" + row(environment="") + "\n"
    (parsed,) = parse_key_file(text).keys
    assert parsed.environment is None
    assert select_key([parsed], "X12004N", "CERT", TODAY).key is parsed


def test_unknown_header_columns_are_ignored() -> None:
    header = HEADER + "Key Status" + " " * 11 + "Note\n"
    text = header + row() + "ACTIVE-NOW" + " " * 11 + "rotated\n" + row("U89", secret=SECRET_B) + "\n"
    keys = parse_key_file(text).keys
    assert [k.session_id for k in keys] == ["X12", "U89"]
    assert keys[0].environment == "NEWRELEASE"
    with pytest.raises(KeyFileError, match="column 167: the value of an unknown column runs into the next"):
        parse_key_file(header + row() + "ACTIVE-NOW-AND-LATER-ON rotated\n", "k")


def test_environment_is_upper_cased() -> None:
    (parsed,) = parse_key_file(HEADER + "\n" + row(environment="cert")).keys
    assert parsed.environment == "CERT"


def test_padded_secret_is_accepted() -> None:
    (parsed,) = parse_key_file(HEADER + "\n" + row(secret=SECRET_A + "=")).keys
    assert decode_secret(parsed.secret.reveal()) == decode_secret(SECRET_A)


# ------------------------------------------------------------------------------------------------------------
# Malformed files: each error names file, line and column, says what is wrong and what to do, never the secret

MALFORMED = [
    pytest.param("", 1, 1, "the key file is empty", id="empty"),
    pytest.param("\n  \n\t\n", 1, 1, "the key file is empty", id="blank-lines-only"),
    pytest.param(HEADER + "\n\n", 1, 1, "header but no keys", id="header-only"),
    pytest.param(
        fixed("Session ID", "Access ID", "Secret", "Creation Date", "Expiration Date")
        + "\n"
        + row(environment=None),
        1,
        1,
        "no column 'Secret Key'",
        id="missing-secret-column",
    ),
    pytest.param(
        "Session ID,Access ID,Secret Key\nX12,AbCdEfGhIjKlMnOpQrSt," + SECRET_A,
        1,
        1,
        "no column 'Session ID', 'Access ID', 'Secret Key', 'Creation Date', 'Expiration Date'",
        id="csv-not-fixed-width",
    ),
    pytest.param(
        HEADER + "Access ID\n" + row(),
        1,
        167,
        "column 'Access ID' twice",
        id="duplicate-header-column",
    ),
    pytest.param(
        HEADER + "\n" + row() + "\n\n" + row(created="2019-13-01"),
        4,
        104,
        "Creation Date '2019-13-01' is not a date (yyyy-MM-dd)",
        id="creation-date-month-13",
    ),
    pytest.param(
        HEADER + "\n" + row(expires="01/23/2026"),
        2,
        125,
        "Expiration Date '01/23/2026' is not a date (yyyy-MM-dd)",
        id="expiration-date-us-format",
    ),
    pytest.param(
        HEADER + "\n" + row(expires="20260123"),
        2,
        125,
        "Expiration Date '20260123' is not a date",
        id="expiration-date-compact",
    ),
    pytest.param(
        HEADER + "\n" + row(created="2026-02-01", expires="2025-02-01"),
        2,
        125,
        "Expiration Date 2025-02-01 is before Creation Date 2026-02-01",
        id="expires-before-created",
    ),
    pytest.param(
        HEADER + "\n" + row(secret=SECRET_A.replace("-", "+").replace("_", "/")),
        2,
        53,
        "Secret Key is not base64url text",
        id="secret-standard-base64",
    ),
    pytest.param(
        HEADER + "\n" + row(secret=SECRET_A[:41]),
        2,
        53,
        "Secret Key is not valid base64url text",
        id="secret-truncated-to-bad-length",
    ),
    pytest.param(
        HEADER + "\n" + row(secret=SECRET_24_BYTES),
        2,
        53,
        "Secret Key decodes to 24 bytes, expected 32",
        id="secret-wrong-size",
    ),
    pytest.param(
        HEADER + "\n" + row(secret=SECRET_A[:20] + " " + SECRET_A[20:]),
        2,
        74,
        "unexpected text outside the key file's columns",
        id="secret-with-space",
    ),
    pytest.param(
        HEADER + "\n" + row(secret=SECRET_A + SECRET_B[:10]),
        2,
        53,
        "Secret Key value runs into the next column",
        id="secret-too-long",
    ),
    pytest.param(
        HEADER + "\n" + " " + row(),
        2,
        1,
        "Session ID is missing",
        id="row-shifted-right",
    ),
    pytest.param(
        HEADER + "\n" + row(session="X1"),
        2,
        1,
        "Session ID must be 3 letters or digits (it has 2 characters)",
        id="session-2-chars",
    ),
    pytest.param(
        HEADER + "\n" + row(session="X12004N"),
        2,
        1,
        "Session ID must be 3 letters or digits (it has 7 characters)",
        id="session-7-chars",
    ),
    pytest.param(
        HEADER + "\n" + row(access=""),
        2,
        22,
        "Access ID is missing",
        id="missing-access-id",
    ),
    pytest.param(
        HEADER + "\n" + row(secret=""),
        2,
        53,
        "Secret Key is missing",
        id="missing-secret",
    ),
    pytest.param(
        HEADER + "\n" + row(access="AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfG"),
        2,
        22,
        "Access ID value runs into the next column",
        id="access-id-too-long",
    ),
    pytest.param(
        HEADER + "\n" + row()[:51] + "x" + row()[52:],
        2,
        53,
        "the Secret Key value does not start at its column",
        id="text-runs-into-column",
    ),
    pytest.param(
        HEADER + "\n" + row(environment="NEW/RELEASE"),
        2,
        146,
        "Environment must be letters, digits",
        id="bad-environment",
    ),
    pytest.param(
        HEADER + "\n" + row() + "   extra",
        2,
        170,
        "unexpected text outside the key file's columns",
        id="extra-text-after-row",
    ),
]


@pytest.mark.parametrize(("text", "line", "column", "problem"), MALFORMED)
def test_malformed_file_names_file_line_column_and_never_the_secret(
    text: str, line: int, column: int, problem: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(KeyFileError) as info:
        parse_key_file(text, "keys.txt")
    message = str(info.value)
    assert message.startswith(f"keys.txt, line {line}, column {column}: "), message
    assert problem in message
    # ... and what to do about it
    assert "download the key file again from CME Customer Center" in message
    assert_no_secret(info.value, (SECRET_A, SECRET_B, SECRET_24_BYTES), caplog)


def test_malformed_fixture_file_names_its_path(tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(HEADER + "\n" + row() + "\n\n" + row(created="2019-13-01") + "\n")
    with pytest.raises(KeyFileError) as info:
        load_key_file(path)
    assert str(info.value).startswith(f"{path}, line 4, column 104: Creation Date '2019-13-01'")
    assert_no_secret(info.value, (SECRET_A,))


def test_date_error_does_not_quote_a_value_that_might_be_secret() -> None:
    with pytest.raises(KeyFileError) as info:
        parse_key_file(HEADER + "\n" + row(created="Ab9x_-zzq"))
    assert "Creation Date is not a date (yyyy-MM-dd)" in str(info.value)
    assert "Ab9x_-zzq" not in str(info.value)


def test_not_utf8_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "keys.txt"
    path.write_bytes((HEADER + "\n").encode() + b"X12  \xff\xfe" + row()[7:].encode())
    with pytest.raises(KeyFileError) as info:
        load_key_file(path)
    assert str(info.value).startswith(f"{path}, line 2, column 6: the key file is not UTF-8 text")
    assert_no_secret(info.value, (SECRET_A,))


def test_not_utf8_column_counts_characters_not_bytes(tmp_path: Path) -> None:
    path = tmp_path / "keys.txt"
    path.write_bytes(b"\xef\xbb\xbf\xc3\xa9t\xe9 Session ID\n")
    with pytest.raises(KeyFileError) as info:
        load_key_file(path)
    assert str(info.value).startswith(f"{path}, line 1, column 3: the key file is not UTF-8 text")


def test_missing_file_is_a_key_file_error(tmp_path: Path) -> None:
    path = tmp_path / "nope.txt"
    with pytest.raises(KeyFileError, match="cannot read the key file") as info:
        load_key_file(path)
    assert str(path) in str(info.value)


def test_key_file_errors_are_value_errors() -> None:
    with pytest.raises(ValueError):
        parse_key_file("")


# ------------------------------------------------------------------------------------------------------------
# Selection


def test_newest_non_expired_key_is_chosen() -> None:
    keys = load_key_file(FIXTURES / "keys.txt").keys
    selection = select_key(keys, "X12004N", today=TODAY)
    assert isinstance(selection, KeySelection)
    assert selection.key.access_key_id == "DhMG0HnZEEyiT6RSLd2a"
    assert selection.days_left == 358
    assert selection.expires_soon is False


def test_latest_expiry_wins_regardless_of_file_order() -> None:
    keys = [
        key(access="OLD", created="2024-01-01", expires="2025-07-01"),
        key(access="NEWEST", created="2024-06-01", expires="2026-06-01"),
        key(access="MIDDLE", created="2025-05-01", expires="2026-01-01"),
    ]
    assert select_key(keys, "X12", today=TODAY).key.access_key_id == "NEWEST"
    assert select_key(list(reversed(keys)), "X12", today=TODAY).key.access_key_id == "NEWEST"


def test_expired_newer_key_is_skipped() -> None:
    keys = [
        key(access="VALID", created="2024-01-01", expires="2025-12-31"),
        key(access="LATER", created="2024-01-01", expires="2026-12-31"),
    ]
    assert select_key(keys, "X12", today=D("2026-01-10")).key.access_key_id == "LATER"
    keys = [key(access="EXPIRED", expires="2025-05-31"), key(access="VALID", expires="2025-06-30")]
    assert select_key(keys, "X12", today=TODAY).key.access_key_id == "VALID"


def test_tie_on_expiry_goes_to_latest_created_then_file_order() -> None:
    keys = [
        key(access="FIRST", created="2025-01-01", expires="2026-01-01"),
        key(access="CREATED-LATER", created="2025-02-01", expires="2026-01-01"),
        key(access="SAME-AS-LATER", created="2025-02-01", expires="2026-01-01"),
    ]
    assert select_key(keys, "X12", today=TODAY).key.access_key_id == "CREATED-LATER"


def test_other_sessions_keys_are_not_used() -> None:
    keys = [key("U89", "U89KEY", expires="2030-01-01"), key("X12", "X12KEY", expires="2026-01-01")]
    assert select_key(keys, "X12004N", today=TODAY).key.access_key_id == "X12KEY"
    assert select_key(keys, "U89", today=TODAY).key.access_key_id == "U89KEY"


def test_all_keys_expired_raises_key_expired_error(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    keys = load_key_file(FIXTURES / "keys_expired.txt").keys
    with pytest.raises(KeyExpiredError) as info:
        select_key(keys, "B08004N", today=TODAY)
    message = str(info.value)
    assert isinstance(info.value, KeyFileError)
    assert "B08004N" in message
    assert "Y45brzJLMO8lgdZ3S1Y5" in message and "2025-01-01" in message
    assert "pyghnVZEHiShImijPOSY" in message and "2025-03-01" in message
    assert "new key" in message
    assert "X12" not in message.split(";")[0]
    file_secrets = tuple(k.secret.reveal() for k in keys)
    assert_no_secret(info.value, file_secrets, caplog)


def test_expiry_date_itself_is_still_valid() -> None:
    only = [key(access="EDGE", created="2024-06-01", expires="2025-06-01")]
    selection = select_key(only, "X12", today=D("2025-06-01"))
    assert selection.days_left == 0
    assert selection.expires_soon is True
    assert not only[0].is_expired(D("2025-06-01"))
    assert only[0].is_expired(D("2025-06-02"))
    assert only[0].days_left(D("2025-06-02")) == -1
    with pytest.raises(KeyExpiredError, match="EDGE"):
        select_key(only, "X12", today=D("2025-06-02"))


def test_near_expiry_logs_a_warning_without_the_secret(caplog: pytest.LogCaptureFixture) -> None:
    keys = load_key_file(FIXTURES / "keys.txt").keys
    with caplog.at_level(logging.DEBUG, logger="dropcopy_client.auth"):
        selection = select_key(keys, "U89004N", today=TODAY)
    assert selection.key.access_key_id == "XKm2nhULLJXMJGTe6fdM"
    assert selection.days_left == 14
    assert selection.expires_soon is True
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    record = warnings[0]
    assert record.name == "dropcopy_client.auth"
    text = record.getMessage()
    assert "XKm2nhULLJXMJGTe6fdM" in text and "2025-06-15" in text and "U89004N" in text
    for secret in FIXTURE_SECRETS:
        assert secret not in caplog.text
        assert secret not in text


@pytest.mark.parametrize(
    ("days", "warned"),
    [(EXPIRY_WARNING_DAYS + 1, False), (EXPIRY_WARNING_DAYS, True), (1, True)],
)
def test_warning_window_is_28_days_inclusive(
    days: int, warned: bool, caplog: pytest.LogCaptureFixture
) -> None:
    assert EXPIRY_WARNING_DAYS == 28
    only = [key(created="2024-06-01", expires=str(TODAY + datetime.timedelta(days=days)))]
    with caplog.at_level(logging.WARNING, logger="dropcopy_client.auth"):
        selection = select_key(only, "X12004N", today=TODAY)
    assert selection.expires_soon is warned
    assert selection.days_left == days
    assert bool(caplog.records) is warned


def test_environment_filter_is_case_insensitive() -> None:
    keys = load_key_file(FIXTURES / "keys.txt").keys
    assert select_key(keys, "K92004N", "cert", TODAY).key.access_key_id == "6yJP0MdxxAvYpSRLKZki"
    assert select_key(keys, "K92004N", "NewRelease", TODAY).key.access_key_id == "IaTzP8A8aGLRTKMQlXU8"


def test_environment_filter_prefers_a_matching_older_key() -> None:
    keys = [
        key(access="CERT-OLD", expires="2025-12-01", environment="CERT"),
        key(access="NR-NEW", expires="2026-12-01", environment="NEWRELEASE"),
    ]
    assert select_key(keys, "X12", "CERT", TODAY).key.access_key_id == "CERT-OLD"
    assert select_key(keys, "X12", None, TODAY).key.access_key_id == "NR-NEW"


def test_no_key_for_environment_names_session_environment_and_file(caplog: pytest.LogCaptureFixture) -> None:
    keys = load_key_file(FIXTURES / "keys.txt").keys
    with pytest.raises(KeyFileError) as info:
        select_key(keys, "X12004N", "production", TODAY)
    assert not isinstance(info.value, KeyExpiredError)
    message = str(info.value)
    assert "session X12" in message and "X12004N" in message
    assert "PRODUCTION" in message
    assert str(FIXTURES / "keys.txt") in message
    assert "K92, U89, X12" in message
    assert "NEWRELEASE" in message
    assert_no_secret(info.value, FIXTURE_SECRETS, caplog)


def test_unknown_session_lists_the_sessions_the_file_has() -> None:
    keys = load_key_file(FIXTURES / "keys.txt").keys
    with pytest.raises(KeyFileError) as info:
        select_key(keys, "ZZZ004N", today=TODAY)
    message = str(info.value)
    assert "no key for session ZZZ" in message
    assert "K92, U89, X12" in message
    assert str(FIXTURES / "keys.txt") in message
    assert "Customer Center" in message
    assert_no_secret(info.value, FIXTURE_SECRETS)


def test_no_keys_at_all() -> None:
    with pytest.raises(KeyFileError, match="no key for session X12"):
        select_key([], "X12004N", today=TODAY)


def test_sender_comp_id_too_short_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="'X1'"):
        select_key([key()], "X1", today=TODAY)


def test_today_defaults_to_utc_today() -> None:
    far = [key(created="2020-01-01", expires="2999-12-31")]
    assert select_key(far, "X12004N").key is far[0]
    gone = [key(created="2000-01-01", expires="2001-01-01")]
    with pytest.raises(KeyExpiredError):
        select_key(gone, "X12004N")


def test_key_without_expiry_never_expires_and_wins() -> None:
    env_key = key(session="*", access="FROMENV", created=None, expires=None, source="environment", line=None)
    file_key = key(access="FROMFILE", expires="2030-01-01")
    assert env_key.days_left(TODAY) is None
    assert not env_key.is_expired(datetime.date.max)
    selection = select_key([file_key, env_key], "X12004N", "CERT", D("2900-01-01"))
    assert selection.key is env_key
    assert selection.days_left is None
    assert selection.expires_soon is False


# ------------------------------------------------------------------------------------------------------------
# Environment variables


def test_env_vars_both_set() -> None:
    env = {ENV_ACCESS_KEY_ID: "EnvKeyId0123456789ab", ENV_SECRET_KEY: SECRET_C}
    api_key = keys_from_env(env)
    assert api_key is not None
    assert api_key.access_key_id == "EnvKeyId0123456789ab"
    assert api_key.secret.reveal() == SECRET_C
    assert api_key.source == "environment"
    assert api_key.expires is None and api_key.created is None and api_key.environment is None
    assert api_key.line is None
    assert select_key([api_key], "ABC004N", "CERT", TODAY).key is api_key
    assert ENV_ACCESS_KEY_ID == "DROPCOPY_ACCESS_KEY_ID"
    assert ENV_SECRET_KEY == "DROPCOPY_SECRET_KEY"


def test_env_vars_none_set() -> None:
    assert keys_from_env({}) is None
    assert keys_from_env({ENV_ACCESS_KEY_ID: "", ENV_SECRET_KEY: "  "}) is None


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({ENV_ACCESS_KEY_ID: "EnvKeyId0123456789ab"}, ENV_SECRET_KEY),
        ({ENV_SECRET_KEY: SECRET_C}, ENV_ACCESS_KEY_ID),
        ({ENV_SECRET_KEY: SECRET_C, ENV_ACCESS_KEY_ID: ""}, ENV_ACCESS_KEY_ID),
    ],
)
def test_env_vars_only_one_set(env: dict[str, str], missing: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(KeyFileError) as info:
        keys_from_env(env)
    assert f"{missing} is not" in str(info.value)
    assert_no_secret(info.value, (SECRET_C,), caplog)


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        (SECRET_C.replace("-", "+").replace("_", "/"), "is not base64url text"),
        (SECRET_C[:41], "is not valid base64url text"),
        (SECRET_24_BYTES, "decodes to 24 bytes"),
    ],
)
def test_env_secret_malformed(secret: str, problem: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(KeyFileError) as info:
        keys_from_env({ENV_ACCESS_KEY_ID: "EnvKeyId0123456789ab", ENV_SECRET_KEY: secret})
    assert ENV_SECRET_KEY in str(info.value) and problem in str(info.value)
    assert_no_secret(info.value, (secret, SECRET_C), caplog)


def test_env_vars_default_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_ACCESS_KEY_ID, raising=False)
    monkeypatch.delenv(ENV_SECRET_KEY, raising=False)
    assert keys_from_env() is None
    monkeypatch.setenv(ENV_ACCESS_KEY_ID, "EnvKeyId0123456789ab")
    monkeypatch.setenv(ENV_SECRET_KEY, SECRET_C)
    api_key = keys_from_env()
    assert api_key is not None and api_key.secret == SecretKey(SECRET_C)


# ------------------------------------------------------------------------------------------------------------
# Generating and writing


def test_generate_key_shapes() -> None:
    api_key = generate_key("X12", created=D("2025-01-01"), expires=D("2026-01-01"), environment="cert")
    assert api_key.session_id == "X12"
    assert re.fullmatch(r"[A-Za-z0-9]{20}", api_key.access_key_id)
    secret = api_key.secret.reveal()
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", secret)
    assert len(decode_secret(secret)) == 32
    assert base64.urlsafe_b64encode(decode_secret(secret)).decode().rstrip("=") == secret
    assert api_key.environment == "CERT"
    assert (api_key.created, api_key.expires) == (D("2025-01-01"), D("2026-01-01"))
    other = generate_key("X12", created=D("2025-01-01"), expires=D("2026-01-01"))
    assert other.access_key_id != api_key.access_key_id
    assert other.secret != api_key.secret
    assert other.environment is None


@pytest.mark.parametrize("session", ["X1", "X123", "X-1"])
def test_generate_key_rejects_bad_session(session: str) -> None:
    with pytest.raises(ValueError, match="session_id"):
        generate_key(session, created=D("2025-01-01"), expires=D("2026-01-01"))


def test_generate_key_rejects_expiry_before_creation() -> None:
    with pytest.raises(ValueError, match="before"):
        generate_key("X12", created=D("2026-01-01"), expires=D("2025-01-01"))


def test_write_then_load_round_trip(tmp_path: Path) -> None:
    keys = [
        generate_key("X12", created=D("2025-01-01"), expires=D("2026-01-01"), environment="CERT"),
        generate_key("X12", created=D("2025-05-01"), expires=D("2026-05-01"), environment="CERT"),
        generate_key("U89", created=D("2025-02-01"), expires=D("2026-02-01"), environment="NEWRELEASE"),
    ]
    path = tmp_path / "keys.txt"
    write_key_file(path, keys)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    loaded = load_key_file(path)
    assert loaded.path == str(path)
    assert len(loaded.keys) == 3
    for written, read in zip(keys, loaded.keys, strict=True):
        assert read.session_id == written.session_id
        assert read.access_key_id == written.access_key_id
        assert read.secret == written.secret
        assert read.secret.reveal() == written.secret.reveal()
        assert (read.created, read.expires, read.environment) == (
            written.created,
            written.expires,
            written.environment,
        )
        assert read.source == str(path)
    assert [k.line for k in loaded.keys] == [2, 3, 4]
    assert select_key(loaded.keys, "X12004N", "cert", TODAY).key.access_key_id == keys[1].access_key_id
    assert not list(tmp_path.glob(".keys-*")), "temporary file left behind"


def test_written_layout_matches_cme_offsets(tmp_path: Path) -> None:
    path = tmp_path / "keys.txt"
    api_key = generate_key("X12", created=D("2025-01-01"), expires=D("2026-01-01"), environment="NEWRELEASE")
    write_key_file(path, [api_key])
    header, data = path.read_text().splitlines()
    assert [header.index(name) for name in NAMES] == [0, 21, 52, 103, 124, 145]
    assert data.index(api_key.access_key_id) == 21
    assert data.index(api_key.secret.reveal()) == 52
    assert (
        data.index("2025-01-01") == 103
        and data.index("2026-01-01") == 124
        and data.index("NEWRELEASE") == 145
    )


def test_write_without_environment_column(tmp_path: Path) -> None:
    path = tmp_path / "keys.txt"
    api_key = generate_key("X12", created=D("2025-01-01"), expires=D("2026-01-01"), environment="CERT")
    write_key_file(path, [api_key], include_environment=False)
    assert "Environment" not in path.read_text()
    (read,) = load_key_file(path).keys
    assert read.environment is None
    assert read.secret == api_key.secret


def test_write_replaces_an_open_file_with_a_private_one(tmp_path: Path) -> None:
    path = tmp_path / "keys.txt"
    path.write_text("old")
    path.chmod(0o644)
    write_key_file(path, [generate_key("X12", created=D("2025-01-01"), expires=D("2026-01-01"))])
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(load_key_file(path).keys) == 1


def test_write_refuses_keys_without_dates_and_empty_lists(tmp_path: Path) -> None:
    env_key = key(session="*", created=None, expires=None, source="environment", line=None)
    with pytest.raises(ValueError, match="creation or expiration date") as info:
        write_key_file(tmp_path / "a.txt", [env_key])
    assert SECRET_A not in str(info.value)
    with pytest.raises(ValueError, match="no keys"):
        write_key_file(tmp_path / "b.txt", [])
    assert not (tmp_path / "a.txt").exists() and not (tmp_path / "b.txt").exists()


def test_write_refuses_what_it_could_not_read_back(tmp_path: Path) -> None:
    bad = key(session="X1")
    with pytest.raises(KeyFileError, match="Session ID") as info:
        write_key_file(tmp_path / "keys.txt", [bad])
    assert_no_secret(info.value, (SECRET_A,))
    assert not (tmp_path / "keys.txt").exists()


# ------------------------------------------------------------------------------------------------------------
# Secret hygiene


def test_secret_key_never_shows_its_text(caplog: pytest.LogCaptureFixture) -> None:
    secret = SecretKey(SECRET_A)
    assert repr(secret) == "SecretKey('***')"
    assert str(secret) == "SecretKey('***')"
    assert f"{secret}" == "SecretKey('***')"
    assert f"{secret!r:>20}".strip() == "SecretKey('***')"
    assert "%s %r" % (secret, secret) == "SecretKey('***') SecretKey('***')"  # noqa: UP031
    assert secret.reveal() == SECRET_A
    api_key = key()
    key_file = KeyFile(path="keys.txt", keys=(api_key,))
    selection = KeySelection(key=api_key, days_left=3, expires_soon=True)
    for text in (repr(api_key), str(api_key), repr(key_file), repr(selection), f"{api_key}"):
        assert SECRET_A not in text
        assert "SecretKey('***')" in text
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("dropcopy_client.test").info("%s %r %s", api_key, key_file, selection)
    assert SECRET_A not in caplog.text


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_secrets_refuse_to_pickle(protocol: int) -> None:
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(SecretKey(SECRET_A), protocol=protocol)
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(key(), protocol=protocol)


def test_secrets_copy() -> None:
    api_key = key()
    assert copy.copy(api_key) == api_key
    assert copy.deepcopy(api_key) == api_key
    assert copy.deepcopy(api_key).secret.reveal() == SECRET_A
    assert copy.copy(api_key.secret) == api_key.secret


def test_secret_equality_and_hash() -> None:
    assert SecretKey(SECRET_A) == SecretKey(SECRET_A)
    assert SecretKey(SECRET_A) != SecretKey(SECRET_B)
    assert SecretKey(SECRET_A) != SECRET_A
    assert hash(SecretKey(SECRET_A)) == hash(SecretKey(SECRET_A))
    assert hash(SecretKey(SECRET_A)) != hash(SECRET_A)
    assert len({key(), key(), key(secret=SECRET_B)}) == 2
    assert key() != key(secret=SECRET_B)


def test_secret_key_wraps_only_text() -> None:
    with pytest.raises(TypeError):
        SecretKey(b"bytes")  # type: ignore[arg-type]
