"""An answer's headers read by veloz.net.headers are what http.client and the email package
make of them, for any block of lines: the same headers in the same order, the same payload
and defects, the same limits."""

import email.parser
import http.client
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veloz.net.headers import parse_headers

PLAIN = (b"content-type: application/json\r\ncontent-length: 12\r\n"
         b"x-request-id: 5580a009-30a8\r\nserver: granian\r\n"
         b"date: Sun, 06 Dec 2026 17:13:00 GMT\r\n\r\n")
UNUSUAL = [
    b"Content-Type: text/plain\r\n X-Folded: on\r\n\r\n",  # a folded (continued) line
    b" leading: continuation\r\nA: b\r\n\r\n",
    b"A: b\r\nnot a header line\r\nC: d\r\n\r\n",
    b": no name\r\nA: b\r\n\r\n",
    b"From someone\r\nA: b\r\n\r\n",  # an envelope line
    b"A: b\rC: d\r\n\r\n",  # a bare carriage return inside a line
    b"A: b\r\nC: d\r\n",  # the answer ended before its blank line
    b"A:\r\nB:   \t spaced \t \r\nC:no space\nD: caf\xe9\r\n\r\n",
    b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nset-cookie: c=3\r\n\r\n",
    b"\r\n",
]


def standard(block: bytes) -> http.client.HTTPMessage:
    lines = http.client._read_headers(io.BytesIO(block))  # type: ignore[attr-defined]
    text = b"".join(lines).decode("iso-8859-1")
    return email.parser.Parser(_class=http.client.HTTPMessage).parsestr(text)


def assert_same(block: bytes) -> None:
    ours, theirs = parse_headers(io.BytesIO(block)), standard(block)
    assert type(ours) is type(theirs)
    assert ours.items() == theirs.items()
    assert ours.get_payload() == theirs.get_payload()
    assert [type(d) for d in ours.defects] == [type(d) for d in theirs.defects]
    assert ours.get_unixfrom() == theirs.get_unixfrom()
    assert ours.get_all("set-cookie") == theirs.get_all("set-cookie")


@pytest.mark.parametrize("block", [PLAIN, *UNUSUAL])
def test_every_kind_of_block_reads_as_http_client_reads_it(block):
    assert_same(block)


_byte_line = st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"") + b"\r\n")
_header_line = st.tuples(st.text("abcXYZ-_:.!", min_size=0, max_size=12),
                         st.text(" \tab\rc\x85é:", max_size=12)).map(
    lambda pair: f"{pair[0]}:{pair[1]}\r\n".encode("iso-8859-1"))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_header_line, _byte_line), max_size=8),
       st.sampled_from([b"\r\n", b"\n", b""]))
def test_any_block_reads_as_http_client_reads_it(lines, end):
    assert_same(b"".join(lines) + end)


def test_http_clients_limits_still_hold():
    with pytest.raises(http.client.LineTooLong):
        parse_headers(io.BytesIO(b"A: " + b"x" * 70_000 + b"\r\n\r\n"))
    with pytest.raises(http.client.HTTPException, match="more than 100 headers"):
        parse_headers(io.BytesIO(b"A: b\r\n" * 101 + b"\r\n"))
