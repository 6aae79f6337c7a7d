"""Keyset paging: `?limit=&after=<id>`, and a `Link: rel="next"` header when more rows exist.

`after` names the last row of the previous page; when the list is sorted by another column,
the page continues from that row's position in the sort, so a page never costs more with
table size (an index on (sort column, id) serves it).
"""

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from flask import request
from pydantic import Field
from sqlalchemy import Select, and_, or_, tuple_

from veloz.core.fields import MAX_ID
from veloz.core.schemas import QueryString


class PageQuery(QueryString):
    """Query parameters every list endpoint accepts; list queries extend it with filters."""

    limit: int = Field(default=50, ge=1, le=500, description="Rows per page (max 500)")
    after: int | None = Field(default=None, ge=0, le=MAX_ID,
                              description="Id of the last row already seen")


@dataclass(frozen=True)
class SortKey:
    column: Any  # a mapped column, e.g. Item.price
    descending: bool = False

    def beyond(self, value):
        return self.column < value if self.descending else self.column > value

    def reached(self, value):
        return self.column <= value if self.descending else self.column >= value

    def ordered(self):
        return self.column.desc() if self.descending else self.column.asc()


def keyset_page(statement: Select, keys: list[SortKey], page: PageQuery,
                cursor: tuple | None) -> Select:
    """Rows strictly after `cursor` (the sort-key values of the `after` row), plus one extra
    row that tells whether a next page exists. The last key must be the unique id."""
    if cursor is not None:
        statement = statement.where(_after_cursor(keys, cursor))
    return statement.order_by(*(key.ordered() for key in keys)).limit(page.limit + 1)


def _after_cursor(keys: list[SortKey], cursor: tuple):
    """Rows past `cursor` in the sort, in a form an index on the keys starts its scan at:
    the expanded OR alone (`price > 5 OR price = 5 AND id > 42`) is only a filter, so a
    deep page walked the index from its first row (210 ms at 1,000,000 items)."""
    if len(keys) == 1:
        return keys[0].beyond(cursor[0])
    if len({key.descending for key in keys}) == 1:  # one direction: a row comparison
        columns, values = tuple_(*(key.column for key in keys)), tuple_(*cursor)
        return columns < values if keys[0].descending else columns > values
    branches = []
    for position, key in enumerate(keys):
        ties = [earlier.column == cursor[i] for i, earlier in enumerate(keys[:position])]
        branches.append(and_(*ties, key.beyond(cursor[position])))
    return and_(keys[0].reached(cursor[0]), or_(*branches))  # the first key bounds the scan


def split_page(rows: list, page: PageQuery) -> tuple[list, dict]:
    """Cut the extra row and build the Link header that points at the next page.

    The link is relative (RFC 8288 resolves it against the request's own URL): built from
    the request's Host it would point wherever a client's `Host:` says, and every hop (the
    gateway, a service) serves the same paths, so the same link is right at each of them."""
    if len(rows) <= page.limit:
        return rows, {}
    rows = rows[: page.limit]
    query = {**request.args.to_dict(), "after": str(rows[-1].id), "limit": str(page.limit)}
    return rows, {"Link": f'<{quote(request.path)}?{urlencode(query)}>; rel="next"'}
