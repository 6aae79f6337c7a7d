"""Field types every service's schemas share."""

from typing import Annotated

from pydantic import Field

# Ids are PostgreSQL BIGINTs: anything larger can name no row, so it is refused up front.
MAX_ID = 2**63 - 1
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
