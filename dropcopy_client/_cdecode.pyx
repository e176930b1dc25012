# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled fast path of :mod:`dropcopy_client._decode`: typed C over the bytes, the same events.

Built by Cython when the package is installed (``setup.py``); :mod:`dropcopy_client._decode` uses it when it
imports and falls back to its own pure-Python decoder otherwise (``IMPLEMENTATION`` says which is active).

What it does is the Python decoder's common case, in one pass of C over each frame: verify the outer frame
(BeginString, BodyLength, CheckSum), find 213 by its 212 length, unwrap ``<RTRF>``, verify the inner frame
(its own 9 and 10, ASCII only), split the inner fields, and convert each present tag straight into the
event's ``__dict__`` with the *same tables* the Python decoder builds from the attrs metadata (handed over by
:func:`configure`: attribute names, defaults, memoised Decimal and date parsers, enum lookups, the variant
rules). Integers, booleans and timestamps are parsed in C; prices, dates and enumerations go through the
Python decoder's own memo dicts, so every value is the same object type built from the same text.

What it does not do is decide anything unusual. A message it cannot vouch for -- admin or unwrapped outer
types, a repeated tag, a repeating group, a data field or ``=`` inside the inner message, a value that does not
convert, any framing error -- makes :func:`decode_fast` return ``None`` and the pure-Python decoder decides,
error reasons included. So the two implementations cannot disagree on an error, and
``tests/unit/test_decode_implementations.py`` checks they agree on everything else.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.datetime cimport datetime_new, import_datetime
from cpython.dict cimport PyDict_Copy, PyDict_GetItem, PyDict_SetItem, PyDict_Size
from cpython.list cimport PyList_GET_ITEM
from cpython.object cimport PyObject
from cpython.unicode cimport PyUnicode_DecodeASCII
from libc.string cimport memcmp, memset

import_datetime()


cdef extern from "Python.h":
    int PyObject_GenericSetDict(object obj, object value, void *context) except -1


# field kinds (the numbering is _decode._KINDS')
cdef enum:
    K_STRING = 0
    K_INT = 1
    K_PRICE = 2
    K_BOOLEAN = 3
    K_TIMESTAMP = 4
    K_TIMESTAMP_NS = 5
    K_DATE = 6
    K_ENUM = 7
    K_GROUP = 8

cdef enum:
    TAG_LIMIT = 65536  # tags below this get a dense id; no table holds a larger tag (configure checks)
    MAX_IDS = 1024
    SOH = 1
    TS_CACHE = 8

cdef unsigned short _TAG_ID[TAG_LIMIT]  # tag -> dense id (0: no table knows it)
cdef unsigned char _IS_LENGTH[TAG_LIMIT]  # length tags of data fields (212, 93, 95, ...)
cdef int _N_IDS = 0


cdef class _Field:
    cdef object name
    cdef int kind
    cdef object aux  # the memo dict (price, date) or enum lookup; None otherwise
    cdef object ns_name  # K_TIMESTAMP_NS: the companion attribute holding exact nanoseconds
    cdef bint required


cdef class _Table:
    cdef object cls
    cdef dict defaults
    cdef list fields  # by dense tag id: _Field or None
    cdef int n_required
    cdef bint variants  # an ExecutionReport: the class comes from 39 + 20 (see _variant)


cdef bint _configured = False
cdef object _fallback = None  # the pure-Python decode(): decides whatever the fast path does not take
cdef object _fallback_strict = None
cdef object _variant = None  # _decode._variant
cdef dict _variant_required = {}  # variant class -> attributes it requires beyond the base (a Fill's 31, 32, ...)
cdef dict _variant_memo = {}
cdef _Table _DELIVERY
cdef _Table _SOURCE
cdef _Table _UNKNOWN
cdef dict _BY_MSG_TYPE = {}
cdef object _UTC = None
cdef object _now = None
cdef object _object_new = object.__new__
cdef object _int = int
cdef tuple _NO_WARNINGS = ()

# A few recent ``YYYYMMDD-HH:MM:SS`` seconds, already validated: the outer 52, inner 52 and 60 of a message
# nearly always share one.
cdef struct _Second:
    char text[17]
    int year, month, day, hour, minute, second
    long long epoch

cdef _Second _SECONDS[TS_CACHE]
cdef int _seconds_used = 0
cdef int _seconds_next = 0


def configure(*, fallback, fallback_strict, tables, by_msg_type, delivery, source, unknown, variant,
              variant_required, length_tags, utc, now):
    """Take the Python decoder's tables and fallbacks (``_decode.compiled_decoder`` calls this once, at
    import; configuring again while another thread decodes would swap the tables under it)."""
    global _configured, _fallback, _fallback_strict, _variant, _DELIVERY, _SOURCE, _UNKNOWN, _BY_MSG_TYPE
    global _UTC, _now, _N_IDS, _variant_memo, _seconds_used, _variant_required
    cdef dict ids = {}
    cdef int tag
    for described in tables.values():
        for tag, *_ in described["fields"]:
            if not 0 < tag < TAG_LIMIT:
                raise ValueError(f"tag {tag} is out of the compiled decoder's range")
            ids.setdefault(tag, len(ids) + 1)
    for tag in (8, 9, 10, 35):  # so that repeats of the framing tags are caught cheaply too
        ids.setdefault(tag, len(ids) + 1)
    if len(ids) >= MAX_IDS:
        raise ValueError("too many tags for the compiled decoder")
    memset(_TAG_ID, 0, sizeof(_TAG_ID))
    memset(_IS_LENGTH, 0, sizeof(_IS_LENGTH))
    for tag, ident in ids.items():
        _TAG_ID[tag] = ident
    for tag in length_tags:
        if 0 < tag < TAG_LIMIT:
            _IS_LENGTH[tag] = 1
    _N_IDS = len(ids) + 1
    built = {key: _make_table(described, ids) for key, described in tables.items()}
    _BY_MSG_TYPE = {msg_type: built[key] for msg_type, key in by_msg_type.items()}
    _DELIVERY, _SOURCE, _UNKNOWN = built[delivery], built[source], built[unknown]
    _fallback, _fallback_strict, _variant = fallback, fallback_strict, variant
    _variant_memo = {}
    _variant_required = dict(variant_required)
    _UTC, _now = utc, now
    _seconds_used = 0
    _configured = True


cdef _Table _make_table(dict described, dict ids):
    cdef _Table table = _Table()
    cdef _Field field
    table.cls = described["cls"]
    table.defaults = dict(described["defaults"])
    table.variants = bool(described.get("variants", False))
    table.fields = [None] * (len(ids) + 1)
    table.n_required = 0
    for tag, name, kind, aux, ns_name, required in described["fields"]:
        field = _Field()
        field.name, field.kind, field.aux, field.ns_name, field.required = name, kind, aux, ns_name, required
        table.fields[ids[tag]] = field
        if required:
            table.n_required += 1
    return table


def decode(raw, *, group="", session=None, received_at=None, uncertain=False, journal_id=None,
           replayed=False):
    """The events of one raw outer message (SOH-delimited). Never raises for bad input.

    The compiled implementation of :func:`dropcopy_client._decode.decode` (same arguments, same results).
    """
    cdef object event = None
    cdef bytes data
    if type(raw) is bytes:
        data = <bytes>raw
    elif type(raw) is str:
        data = (<str>raw).encode("utf-8", "surrogateescape")
    else:
        data = None
    if data is not None:
        try:
            event = _fast(data, group, session, received_at, uncertain, journal_id, replayed)
        except Exception:  # never trusted: the pure-Python decoder decides (and reports its own failures)
            event = None
        if event is not None:
            return [event]
    return _fallback(
        raw, group=group, session=session, received_at=received_at, uncertain=uncertain,
        journal_id=journal_id, replayed=replayed,
    )


def decode_strict(raw, *, group="", session=None, received_at=None, uncertain=False):
    """The compiled :func:`dropcopy_client._decode.decode_strict` (raises DecodeError)."""
    cdef object event = None
    if type(raw) is bytes:
        try:
            event = _fast(<bytes>raw, group, session, received_at, uncertain, None, False)
        except Exception:
            event = None
        if event is not None:
            return [event]
    return _fallback_strict(raw, group=group, session=session, received_at=received_at, uncertain=uncertain)


def decode_fast(bytes data, group="", session=None, received_at=None, uncertain=False, journal_id=None,
                replayed=False):
    """The event when the fast path takes ``data``, else None (the Python decoder would decide). Tests and
    benchmarks use it to check how much of a stream the fast path handles; unlike :func:`decode` it lets an
    unexpected exception (a bug) through."""
    try:
        return _fast(data, group, session, received_at, uncertain, journal_id, replayed)
    except (ValueError, LookupError, ArithmeticError):  # a memoised parser refused the text
        return None


# ------------------------------------------------------------------------------------------------ values


cdef inline bint _digit(unsigned char c) noexcept nogil:
    return 48 <= c <= 57


cdef inline int _d2(const unsigned char* s) noexcept nogil:
    return (s[0] - 48) * 10 + (s[1] - 48)


cdef inline long long _days_from_civil(long long y, int m, int d) noexcept nogil:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    cdef long long era, yoe, doy, doe
    if m <= 2:
        y -= 1
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


cdef inline int _days_in_month(int y, int m) noexcept nogil:
    if m == 2:
        return 29 if (y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)) else 28
    if m == 4 or m == 6 or m == 9 or m == 11:
        return 30
    return 31


cdef _Second* _second(const unsigned char* s) noexcept:
    """The validated fields of ``YYYYMMDD-HH:MM:SS`` (what ``datetime`` accepts), or NULL."""
    global _seconds_used, _seconds_next
    cdef int i
    cdef _Second* slot
    for i in range(_seconds_used):
        if memcmp(_SECONDS[i].text, s, 17) == 0:
            return &_SECONDS[i]
    if s[8] != 45 or s[11] != 58 or s[14] != 58:  # '-', ':', ':'
        return NULL
    for i in range(17):
        if i != 8 and i != 11 and i != 14 and not _digit(s[i]):
            return NULL
    cdef int year = _d2(s) * 100 + _d2(s + 2)
    cdef int month = _d2(s + 4)
    cdef int day = _d2(s + 6)
    cdef int hour = _d2(s + 9)
    cdef int minute = _d2(s + 12)
    cdef int second = _d2(s + 15)
    if year < 1 or month < 1 or month > 12 or day < 1 or day > _days_in_month(year, month):
        return NULL
    if hour > 23 or minute > 59 or second > 59:
        return NULL
    slot = &_SECONDS[_seconds_next]
    _seconds_next = (_seconds_next + 1) % TS_CACHE
    if _seconds_used < TS_CACHE:
        _seconds_used += 1
    for i in range(17):
        slot.text[i] = <char>s[i]
    slot.year, slot.month, slot.day = year, month, day
    slot.hour, slot.minute, slot.second = hour, minute, second
    slot.epoch = _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second
    return slot


cdef object _timestamp(const unsigned char* s, Py_ssize_t n, long long* epoch, long long* frac_out):
    """UTCTimestamp ``YYYYMMDD-HH:MM:SS[.f{1,9}]`` -> datetime (epoch second and ns fraction out), or None."""
    cdef long long frac = 0
    cdef Py_ssize_t i
    if n != 17 and not (18 < n <= 27 and s[17] == 46):  # '.'
        return None
    cdef _Second* sec = _second(s)
    if sec == NULL:
        return None
    if n > 17:
        for i in range(18, n):
            if not _digit(s[i]):
                return None
            frac = frac * 10 + (s[i] - 48)
        for i in range(n, 27):
            frac *= 10
    epoch[0] = sec.epoch
    frac_out[0] = frac
    return datetime_new(sec.year, sec.month, sec.day, sec.hour, sec.minute, sec.second,
                        <int>(frac // 1000), _UTC)


cdef object _integer(const unsigned char* s, Py_ssize_t n):
    """``-?[0-9]+`` -> int, or None."""
    cdef Py_ssize_t i = 0, j
    cdef long long value = 0
    cdef bint negative = n > 0 and s[0] == 45
    if negative:
        i = 1
    if i >= n:
        return None
    if n - i > 18:
        for j in range(i, n):
            if not _digit(s[j]):
                return None
        return _int(PyUnicode_DecodeASCII(<const char*>s, n, NULL))
    while i < n:
        if not _digit(s[i]):
            return None
        value = value * 10 + (s[i] - 48)
        i += 1
    return -value if negative else value


cdef inline object _memo(object lookup, object text):
    cdef PyObject* hit = PyDict_GetItem(lookup, text)
    if hit != NULL:
        return <object>hit
    return lookup[text]  # the parser behind the memo (raises ValueError for bad text)


cdef int _put(dict values, _Field field, const unsigned char* s, Py_ssize_t n) except -2:
    """Convert one field into ``values``; -1 when the text does not convert (the Python decoder explains)."""
    cdef int kind = field.kind
    cdef object value
    cdef long long epoch = 0, frac = 0
    if kind == K_STRING:
        value = PyUnicode_DecodeASCII(<const char*>s, n, NULL)
    elif kind == K_INT:
        value = _integer(s, n)
        if value is None:
            return -1
    elif kind == K_PRICE or kind == K_DATE or kind == K_ENUM:
        value = _memo(field.aux, PyUnicode_DecodeASCII(<const char*>s, n, NULL))
    elif kind == K_BOOLEAN:
        if n != 1:
            return -1
        if s[0] == 89:  # Y
            value = True
        elif s[0] == 78:  # N
            value = False
        else:
            return -1
    elif kind == K_TIMESTAMP:
        value = _timestamp(s, n, &epoch, &frac)
        if value is None:
            return -1
    elif kind == K_TIMESTAMP_NS:
        value = _timestamp(s, n, &epoch, &frac)
        if value is None:
            return -1
        if -9_000_000_000 < epoch < 9_000_000_000:
            PyDict_SetItem(values, field.ns_name, epoch * 1_000_000_000 + frac)
        else:  # after 2255 or before 1685: beyond 64 bits, Python integers
            PyDict_SetItem(values, field.ns_name, <object>epoch * 1_000_000_000 + frac)
    else:  # a repeating group: the Python decoder reads those
        return -1
    PyDict_SetItem(values, field.name, value)
    return 0


cdef object _build(object cls, dict values):
    obj = _object_new(cls)
    PyObject_GenericSetDict(obj, values, NULL)
    return obj


# ------------------------------------------------------------------------------------------------ frames


cdef object _fast(bytes data, object group, object session, object received_at, object uncertain,
                  object journal_id, object replayed):
    """The one event of a regular wrapped business message, or None for anything else."""
    if not _configured:
        return None
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(data)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
    cdef Py_ssize_t i, j, start, value_start, body_start, trailer, xml_start = -1, xml_end = -1
    cdef long long declared, tag, length
    cdef unsigned int total = 0
    cdef int ident, delivery_required = 0
    cdef unsigned char seen[MAX_IDS]
    cdef _Field field

    # ---- outer frame: 8=FIX.4.2|9=...|35=n| ... |10=nnn|
    if n < 40 or memcmp(p, b"8=FIX.4.2\x019=", 12) != 0:
        return None
    i, declared = 12, 0
    while i < n and _digit(p[i]) and i < 21:
        declared = declared * 10 + (p[i] - 48)
        i += 1
    if i == 12 or p[i] != SOH:
        return None
    body_start = i + 1
    trailer = n - 7
    if (p[n - 1] != SOH or p[trailer - 1] != SOH or memcmp(p + trailer, b"10=", 3) != 0
            or not (_digit(p[n - 4]) and _digit(p[n - 3]) and _digit(p[n - 2]))):
        return None
    if declared != trailer - body_start or memcmp(p + body_start, b"35=n\x01", 5) != 0:
        return None
    for i in range(trailer):
        total += p[i]
    if <int>(total & 255) != (p[n - 4] - 48) * 100 + (p[n - 3] - 48) * 10 + (p[n - 2] - 48):
        return None

    memset(seen, 0, _N_IDS)
    seen[_TAG_ID[35]] = 1
    cdef dict delivery_values = PyDict_Copy(_DELIVERY.defaults)
    cdef list delivery_fields = _DELIVERY.fields
    i = body_start + 5
    while i < trailer:
        start, tag = i, 0
        while _digit(p[i]) and i - start < 9:
            tag = tag * 10 + (p[i] - 48)
            i += 1
        if i == start or p[start] == 48 or p[i] != 61:  # no tag, a leading zero, or no '='
            return None
        i += 1
        value_start = i
        if tag == 212:
            length = 0
            while _digit(p[i]) and i - value_start < 9:
                length = length * 10 + (p[i] - 48)
                i += 1
            if i == value_start or p[i] != SOH or xml_start >= 0:
                return None
            i += 1
            if i + 4 > trailer or memcmp(p + i, b"213=", 4) != 0:
                return None
            xml_start = i + 4
            xml_end = xml_start + length
            if xml_end >= trailer or p[xml_end] != SOH:
                return None
            i = xml_end + 1
            continue
        if tag < TAG_LIMIT and (_IS_LENGTH[tag] or tag == 213):  # another data field, or 213 without 212
            return None
        while p[i] != SOH:  # p[trailer - 1] is SOH: the scan stops inside the frame
            i += 1
        if tag == 35:  # 35 again (the Python decoder would take the last one)
            return None
        ident = _TAG_ID[tag] if tag < TAG_LIMIT else 0
        if ident:
            field = <_Field>PyList_GET_ITEM(delivery_fields, ident)
            if seen[ident]:
                if <object>field is not None:
                    return None  # a repeated header field (the Python decoder takes the last one)
            elif <object>field is not None:
                seen[ident] = 1
                for j in range(value_start, i):
                    if p[j] > 127:
                        return None
                if _put(delivery_values, field, p + value_start, i - value_start) < 0:
                    return None
                if field.required:
                    delivery_required += 1
        i += 1
    if i != trailer or xml_start < 0 or delivery_required != _DELIVERY.n_required:
        return None

    # ---- 213: <RTRF>inner</RTRF>, one block
    if xml_end - xml_start < 13 or memcmp(p + xml_start, b"<RTRF>", 6) != 0:
        return None
    if memcmp(p + xml_end - 7, b"</RTRF>", 7) != 0:
        return None
    cdef Py_ssize_t a = xml_start + 6, b = xml_end - 7  # the inner message: p[a:b]
    cdef Py_ssize_t m = b - a

    # ---- inner frame: ASCII, 8=FIX.4.2|9=..|35=..| ... |10=nnn|, its own 9 and 10
    if m < 30 or memcmp(p + a, b"8=FIX.4.2\x019=", 12) != 0:
        return None
    total = 0
    for i in range(a, b - 7):
        if p[i] > 127:
            return None
        if p[i] == 60 and ((i + 6 <= b and memcmp(p + i, b"<RTRF>", 6) == 0)
                           or (i + 7 <= b and memcmp(p + i, b"</RTRF>", 7) == 0)):
            return None
        total += p[i]
    trailer = b - 7
    if (p[b - 1] != SOH or p[trailer - 1] != SOH or memcmp(p + trailer, b"10=", 3) != 0
            or not (_digit(p[b - 4]) and _digit(p[b - 3]) and _digit(p[b - 2]))):
        return None
    if <int>(total & 255) != (p[b - 4] - 48) * 100 + (p[b - 3] - 48) * 10 + (p[b - 2] - 48):
        return None
    i, declared = a + 12, 0
    while _digit(p[i]) and i - a < 21:
        declared = declared * 10 + (p[i] - 48)
        i += 1
    if i == a + 12 or p[i] != SOH:
        return None
    body_start = i + 1
    if declared != trailer - body_start or memcmp(p + body_start, b"35=", 3) != 0:
        return None

    # msg type, then the body's table
    i = body_start + 3
    while p[i] != SOH and p[i] != 61:
        i += 1
    if p[i] != SOH or i == body_start + 3:
        return None
    msg_type = PyUnicode_DecodeASCII(<const char*>(p + body_start + 3), i - body_start - 3, NULL)
    cdef PyObject* found = PyDict_GetItem(_BY_MSG_TYPE, msg_type)
    cdef _Table table = <_Table><object>found if found != NULL else None
    cdef list body_fields = table.fields if table is not None else None
    cdef list source_fields = _SOURCE.fields
    cdef dict source_values = PyDict_Copy(_SOURCE.defaults)
    cdef dict values = PyDict_Copy(table.defaults if table is not None else _UNKNOWN.defaults)
    cdef int source_required = 0, body_required = 0
    memset(seen, 0, _N_IDS)
    seen[_TAG_ID[8]] = 1
    seen[_TAG_ID[9]] = 1
    seen[_TAG_ID[35]] = 1
    i += 1
    while i < b:
        start, tag = i, 0
        while _digit(p[i]) and i - start < 9:
            tag = tag * 10 + (p[i] - 48)
            i += 1
        if i == start or p[start] == 48 or p[i] != 61:
            return None
        if tag < TAG_LIMIT and _IS_LENGTH[tag]:
            return None
        i += 1
        value_start = i
        while p[i] != SOH:  # p[b - 1] is SOH
            if p[i] == 61:  # '=' inside a value
                return None
            i += 1
        ident = _TAG_ID[tag] if tag < TAG_LIMIT else 0
        if ident:
            if seen[ident]:
                return None
            seen[ident] = 1
            field = <_Field>PyList_GET_ITEM(source_fields, ident)
            if <object>field is not None:
                if _put(source_values, field, p + value_start, i - value_start) < 0:
                    return None
                if field.required:
                    source_required += 1
            if body_fields is not None:
                field = <_Field>PyList_GET_ITEM(body_fields, ident)
                if <object>field is not None:
                    if _put(values, field, p + value_start, i - value_start) < 0:
                        return None
                    if field.required:
                        body_required += 1
        # An untyped tag (no table knows it) may repeat: the Python decoder then reads the fields in order,
        # keeps the first of each and warns only about typed tags, which gives this same event.
        i += 1
    if not seen[_TAG_ID[10]] or source_required != _SOURCE.n_required:
        return None
    if table is not None and body_required != table.n_required:
        return None

    # ---- the event
    delivery_values["group"] = group
    if session is None:  # the default of 50 is "", as when the Python decoder finds no 50
        session = f"{delivery_values['target']}:{delivery_values['segment']}"
    delivery_values["session"] = session
    delivery_values["received_at"] = received_at if received_at is not None else _now(_UTC)
    delivery_values["uncertain"] = uncertain
    delivery_values["journal_id"] = journal_id
    delivery_values["replayed"] = replayed
    delivery = _build(_DELIVERY.cls, delivery_values)
    source = _build(_SOURCE.cls, source_values)
    if table is None:
        cls = _UNKNOWN.cls
        values["msg_type"] = msg_type
    elif table.variants:
        cls, warnings = _classify(values)
        found = PyDict_GetItem(_variant_required, cls)
        if found != NULL:
            for name in <tuple>found:
                if values[name] is None:  # absent (a present tag never converts to None): Python explains
                    return None
        values["warnings"] = warnings
    else:
        cls = table.cls
        values["warnings"] = _NO_WARNINGS
    values["delivery"] = delivery
    values["source"] = source
    values["inner"] = PyBytes_FromStringAndSize(<const char*>(p + a), m)
    return _build(cls, values)


cdef tuple _classify(dict values):
    """(ExecutionReport class, warnings) by 39 + 20 and the 150 cross-check: the Python rules, memoised."""
    cdef object key = (values["ord_status"], values["exec_trans_type"], values["exec_type"])
    cdef PyObject* hit = PyDict_GetItem(_variant_memo, key)
    if hit != NULL:
        return <tuple>hit
    cls, warnings = _variant({"ord_status": key[0], "exec_trans_type": key[1], "exec_type": key[2]})
    result = (cls, tuple(warnings))
    if PyDict_Size(_variant_memo) < 1024:
        _variant_memo[key] = result
    return result
