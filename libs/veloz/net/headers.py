"""The headers of an answer, read without the email package when they are plain lines.

http.client hands every answer's header block to the email package's feed parser (built for
mail, with its continuation lines, envelope lines and defects): 13 % of pedidos' CPU per paid
order and the costliest step of the gateway's call out (bench/README.md). `install()` puts in
`http.client.parse_headers`'s place a reader that builds the same `HTTPMessage` itself when
every line is a plain `Name: value` line, as every service here and every common server
sends, and hands any other block (a folded line, a line that is no header, a bare carriage
return) to the email package exactly as http.client does. The limits on a line's length and
the number of lines are http.client's own (its `_read_headers`).
"""

import email.parser
import http.client
import re
from typing import BinaryIO

# A line the feed parser takes as one whole header: a name of printable ASCII but the colon
# (email.feedparser's headerRE), the colon, and a value without a carriage return before the
# line's end (the feed parser would break the line there).
_PLAIN_LINE = re.compile(rb"([\041-\071\073-\176]+):([^\r\n]*)\r?\n")


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
