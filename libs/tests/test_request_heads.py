"""A request written by veloz.net.headers (`request_head`, `host_header`) is the request
http.client's `HTTPConnection.request` writes, byte for byte, and a header it refuses is
refused: for the calls the platform makes and for arbitrary names, values and bodies."""

import http.client

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veloz.net.headers import host_header, request_head


class Captured:
    """A socket that keeps what is sent on it."""

    def __init__(self):
        self.sent = b""

    def sendall(self, data):
        self.sent += bytes(data)

    def close(self):
        pass


def connection(host: str, port: int, https: bool = False) -> http.client.HTTPConnection:
    kind = http.client.HTTPSConnection if https else http.client.HTTPConnection
    made = kind(host, port)
    made.sock = Captured()  # type: ignore[assignment]
    return made


def written_by_http_client(host, port, method, target, headers, body, https=False) -> bytes:
    made = connection(host, port, https)
    made.request(method, target, body=body, headers=headers)
    return made.sock.sent


def written_here(host, port, method, target, headers, body, https=False) -> bytes:
    made = connection(host, port, https)
    made.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
    head = request_head(host_header(host, port, 443 if https else 80), method, headers, body)
    made._output(head)  # type: ignore[attr-defined]
    made.endheaders(body)
    return made.sock.sent


def outcome(write, *call):
    try:
        return write(*call)
    except ValueError:  # UnicodeEncodeError included
        return ValueError


PLATFORM_CALLS = [
    ("GET", "/items/1", {"User-Agent": "python-requests/2.32", "Accept": "*/*",
                         "X-Forwarded-For": "127.0.0.1", "Accept-Encoding": "identity",
                         "X-Request-ID": "5580a009-30a8-4a1e-9d7f-1c2b3d4e5f60"}, None),
    ("POST", "/reservations", {"Content-Type": "application/json",
                               "X-Request-ID": "r-1"}, b'{"order_id": 7}'),
    ("POST", "/payments", {"Idempotency-Key": "order-7-charge"}, b"{}"),
    ("POST", "/reservations/3/commit", {}, None),  # Content-Length: 0
    ("DELETE", "/items/9", {"Host": "estoque.internal"}, None),  # its own Host
    ("PUT", "/x", {"Content-Length": "2", "X-Folded": "a\r\n b"}, b"{}"),
    ("POST", "/x", {"Transfer-Encoding": "chunked"}, None),
    ("PATCH", "/x", {"accept-encoding": "gzip", "HOST": "h"}, None),
]


@pytest.mark.parametrize(("method", "target", "headers", "body"), PLATFORM_CALLS)
@pytest.mark.parametrize(("host", "port", "https"), [
    ("127.0.0.1", 5003, False), ("estoque", 80, False), ("::1", 8443, True),
    ("pagamentos.example", 443, True)])
def test_the_platforms_calls_are_written_as_http_client_writes_them(
        host, port, https, method, target, headers, body):
    call = (host, port, method, target, headers, body, https)
    assert written_here(*call) == written_by_http_client(*call)


@pytest.mark.parametrize("headers", [
    {"Bad:Name": "x"}, {" Leading": "x"}, {"": "x"}, {"Line\nBreak": "x"}, {"Café": "x"},
    {"A": "x\r\nInjected: yes"}, {"A": "trailing\r"}, {"A": "caf\u20ac"}])
def test_a_header_http_client_refuses_is_refused(headers):
    call = ("127.0.0.1", 5003, "GET", "/items/1", headers, None)
    assert outcome(written_by_http_client, *call) is ValueError
    assert outcome(written_here, *call) is ValueError


@pytest.mark.parametrize("name", ["\x1cStarts-With-A-Separator", "With Space", "Tab\tInside",
                                  "a=b", "X-\x7f"])
def test_an_odd_name_http_client_takes_is_taken(name):
    call = ("127.0.0.1", 5003, "GET", "/items/1", {name: "v"}, None)
    assert written_here(*call) == written_by_http_client(*call)


_names = st.text("abzAZ-_ :\t\r\né\x1c", max_size=8)
_values = st.text("ab z\t\r\n\x00é\u20ac:", max_size=10)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "post"]),
       st.dictionaries(_names, _values, max_size=5),
       st.one_of(st.none(), st.binary(max_size=20)))
def test_any_headers_and_body_are_written_or_refused_as_http_client_does(method, headers, body):
    call = ("127.0.0.1", 5003, method, "/items/1?q=a", headers, body)
    assert outcome(written_here, *call) == outcome(written_by_http_client, *call)
