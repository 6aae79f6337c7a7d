"""Keyset paging at the edge: a page's `Link: rel="next"` header, from the request's own
query string (veloz.data.paging builds the page's statement)."""

from urllib.parse import quote, urlencode

from flask import request

from veloz.data.paging import PageQuery, cut_page


def split_page(rows: list, page: PageQuery) -> tuple[list, dict]:
    """Cut the extra row and build the Link header that points at the next page.

    The link is relative (RFC 8288 resolves it against the request's own URL): built from
    the request's Host it would point wherever a client's `Host:` says, and every hop (the
    gateway, a service) serves the same paths, so the same link is right at each of them."""
    rows, more = cut_page(rows, page)
    if not more:
        return rows, {}
    query = {**request.args.to_dict(), "after": str(rows[-1].id), "limit": str(page.limit)}
    return rows, {"Link": f'<{quote(request.path)}?{urlencode(query)}>; rel="next"'}
