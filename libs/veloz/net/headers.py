"""The headers of an answer, read without the email package when they are plain lines; the
headers of a request, written in one pass.

http.client hands every answer's header block to the email package's feed parser (built for
mail, with its continuation lines, envelope lines and defects): 13 % of pedidos' CPU per paid
order and the costliest step of the gateway's call out (bench/README.md). `install()` puts in
`http.client.parse_headers`'s place a reader that builds the same `HTTPMessage` itself when
every line is a plain `Name: value` line, as every service here and every common server
sends, and hands any other block (a folded line, a line that is no header, a bare carriage
return) to the email package exactly as http.client does. The limits on a line's length and
the number of lines are http.client's own (its `_read_headers`).

`request_head` writes a request's header lines as `HTTPConnection.request` writes them: the
same lines in the same order, refused by the same rules. `request` calls `putheader` once per
header, and each call encodes and checks its name and value apart: about 11k instructions a
header, 100k for the gateway's call out with five (bench/README.md). Here the names are
checked once per process and the values in one pass.
"""

import email.parser
import http.client
import re
from typing import BinaryIO

# A line the feed parser takes as one whole header: a name of printable ASCII but the colon
# (email.feedparser's headerRE), the colon, and a value without a carriage return before the
# line's end (the feed parser would break the line there).
_PLAIN_LINE = re.compile(rb"([\041-\071\073-\176]+):([^\r\n]*)\r?\n")
# http.client's rules for a request's header (`putheader`): a name of ASCII without a colon or
# line break that starts with neither whitespace nor the colon, and a value of Latin-1 whose
# line breaks only fold (a CR or LF followed by a space or tab, or CR by LF).
_LEGAL_NAME = re.compile(r"[^:\s][^:\r\n]*", re.ASCII)
_ILLEGAL_VALUE = re.compile(r"\n(?![ \t])|\r(?![ \t\n])")
_VALUES_APART = "\x00"  # none of a space, tab, CR or LF: each value's breaks read as alone
# What `request` sends a Content-Length of 0 for when a call has no body.
_BODY_METHODS = frozenset({"PATCH", "POST", "PUT"})
_legal_names: set[str] = set()  # the names that passed, remembered: calls reuse a few names
_MAX_REMEMBERED_NAMES = 1024  # bounded: a proxy passes on names its clients chose


def parse_headers(fp: BinaryIO, _class: type = http.client.HTTPMessage) -> http.client.HTTPMessage:
    """`http.client.parse_headers`, with the same result for every block."""
    lines = http.client._read_headers(fp)  # type: ignore[attr-defined]
    if lines[-1] not in (b"\r\n", b"\n"):  # the answer ended before its blank line
        return _through_email(lines, _class)
    message = _class()
    for line in lines[:-1]:
        plain = _PLAIN_LINE.fullmatch(line)
        if plain is None:
            return _through_email(lines, _class)
        name, value = plain.groups()
        message.set_raw(name.decode("ascii"), value.decode("iso-8859-1").lstrip(" \t"))
    message.set_payload("")
    return message


def _through_email(lines: list[bytes], _class: type) -> http.client.HTTPMessage:
    """What http.client itself does with the lines it read."""
    text = b"".join(lines).decode("iso-8859-1")
    return email.parser.Parser(_class=_class).parsestr(text)


def install() -> None:
    """From now on, in this process, every http.client answer's headers are read here."""
    http.client.parse_headers = parse_headers  # type: ignore[assignment]


def host_header(host: str, port: int, default_port: int) -> str:
    """The Host line http.client's `putrequest` writes for a connection to `host`:`port`."""
    try:
        name = host.encode("ascii")
    except UnicodeEncodeError:
        name = host.encode("idna")
    value = f"[{name.decode('ascii')}]" if ":" in host else name.decode("ascii")
    return f"Host: {value}" if port == default_port else f"Host: {value}:{port}"


def request_head(host: str, method: str, headers: dict[str, str], body: bytes | None) -> bytes:
    """The header lines `HTTPConnection.request(method, target, body, headers)` writes after
    its request line, joined by CRLF: `host` (a `host_header` line), `Accept-Encoding:
    identity` and the body's Content-Length unless `headers` name their own, then `headers`
    in order. A ValueError (UnicodeEncodeError for text beyond ASCII in a name or Latin-1 in
    a value) for a header http.client would refuse."""
    given = {name.lower() for name in headers}
    lines = []
    if "host" not in given:
        lines.append(host)
    if "accept-encoding" not in given:
        lines.append("Accept-Encoding: identity")
    if "content-length" not in given and "transfer-encoding" not in given:
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        elif method.upper() in _BODY_METHODS:
            lines.append("Content-Length: 0")
    _check(headers)
    lines.extend(f"{name}: {value}" for name, value in headers.items())
    return "\r\n".join(lines).encode("latin-1")


def _check(headers: dict[str, str]) -> None:
    for name in headers:
        if name not in _legal_names:
            _check_name(name)
    values = _VALUES_APART.join(headers.values())
    if ("\r" in values or "\n" in values) and _ILLEGAL_VALUE.search(values):
        raise ValueError(f"Invalid header value in {headers!r}")


def _check_name(name: str) -> None:
    name.encode("ascii")  # UnicodeEncodeError, as http.client
    if not _LEGAL_NAME.fullmatch(name):
        raise ValueError(f"Invalid header name {name!r}")
    if len(_legal_names) < _MAX_REMEMBERED_NAMES:
        _legal_names.add(name)
