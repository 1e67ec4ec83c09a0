"""Control characters in paths, raw and percent-encoded, shared by the ASGI and WSGI firewall tests."""

from __future__ import annotations

# The encodings of the issue, then every C0 control, DEL, every C1 control and U+2028/9.
REPORTED = ["%1b", "%07", "%08", "%09", "%0b", "%7f", "%c2%9b", "%c2%85"]
ENCODED_CONTROLS = list(
    dict.fromkeys(
        [
            *REPORTED,
            *(f"%{code:02x}" for code in range(0x20)),
            *(f"%{code:02X}" for code in range(0x20)),
            "%7F",
            *(f"%c2%{code:02x}" for code in range(0x80, 0xA0)),
            *(f"%C2%{code:02X}" for code in range(0x80, 0xA0)),
            "%e2%80%a8",
            "%e2%80%a9",
            "%E2%80%A8",
            "%E2%80%A9",
            "%E2%80%a9",
        ]
    )
)
# Half raw, half encoded: a decoder joins the bytes into the same control character.
HALF_ENCODED = [b"\xc2%85", b"%c2\x85", b"%C2\x9b", b"\xe2%80%a8", b"%e2\x80\xa9", b"\xe2\x80%A8"]
RAW_CONTROLS = [
    *(bytes([code]) for code in range(0x20)),
    b"\x7f",
    *(b"\xc2" + bytes([code]) for code in range(0x80, 0xA0)),
    b"\xe2\x80\xa8",
    b"\xe2\x80\xa9",
]
# Non-ASCII text that shares bytes with the controls above must still pass: ą and ś end in
# a C1-valued continuation byte, … and € start like U+2028, NBSP and © follow \xc2.
ORDINARY = [
    b"/%c3%a9t%C3%A9",
    b"/%c4%85",
    b"/%C5%9B",
    b"/%e2%80%a6",
    b"/%e2%82%ac",
    b"/%c2%a0",
    b"/%c2%a9",
    b"/caf\xc3\xa9",
    b"/\xc4\x85",
    b"/\xe2\x80\xa6",
    b"/a%20b",
    b"/a%7eb",
]


def hex_ids(values: list[bytes]) -> list[str]:
    """Readable pytest ids for byte strings that hold control characters."""
    return [value.hex() for value in values]
