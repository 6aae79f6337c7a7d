"""The identity provider's public signing keys (a JWKS), fetched and kept between fetches.

PyJWT's `PyJWKClient` fetches and parses the set (http(s) only, no redirects, a timeout on
the call); the keys are kept here rather than in its own cache, because that cache forgets
the keys when its lifespan ends even while the provider is unreachable, and its cooldown for
unknown key ids starts only after a *successful* fetch, so a provider that is down would be
asked again for every made-up `kid`. Here every attempt, failed or not, starts the interval,
and a failed fetch keeps the keys from the last one that worked.
"""

import logging
import math
import threading
import time
from collections.abc import Callable

import jwt
from jwt import PyJWK

log = logging.getLogger(__name__)


class UnknownSigningKey(Exception):
    """No published key has the token's `kid` (or the keys could not be fetched to look)."""


class ProviderKeys:
    """Signing keys by `kid`, refreshed every `refresh_seconds` and when an unknown `kid`
    arrives, but never fetched more often than once per `min_fetch_interval_seconds`."""

    def __init__(self, url: str, refresh_seconds: float, min_fetch_interval_seconds: float,
                 timeout_seconds: float, clock: Callable[[], float] = time.monotonic):
        self._client = jwt.PyJWKClient(url, cache_jwk_set=False, timeout=timeout_seconds,
                                       headers={"User-Agent": "pedidos-veloz-gateway"})
        self._refresh_seconds = refresh_seconds
        self._min_interval = min_fetch_interval_seconds
        self._clock = clock
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at = self._tried_at = self._told_at = -math.inf
        self._fetching = threading.Lock()
        self.last_error: str | None = None

    def key_for(self, kid: str) -> PyJWK:
        """The published key with this id; an unknown id may trigger one (throttled) fetch."""
        if kid in self._keys:
            self._refresh_if_stale()
        else:
            self._refresh(wait=True)
        key = self._keys.get(kid)
        if key is None:
            raise UnknownSigningKey(self._why_unknown(kid))
        return key

    def is_published(self, kid: str) -> bool:
        """Whether the last fetch that worked still lists this key (a removed key is revoked)."""
        self._refresh_if_stale()
        return kid in self._keys

    def _refresh_if_stale(self) -> None:
        if self._clock() >= self._fetched_at + self._refresh_seconds:
            self._refresh(wait=False)  # the others go on meanwhile with the keys they have

    def _refresh(self, wait: bool) -> None:
        if not self._due():
            return
        if not self._fetching.acquire(blocking=wait):
            return
        try:
            if self._due():  # another caller may have fetched while this one waited
                self._fetch()
        finally:
            self._fetching.release()

    def _due(self) -> bool:
        return self._clock() >= self._tried_at + self._min_interval

    def _fetch(self) -> None:
        self._tried_at = self._clock()
        try:
            keys = self._client.get_signing_keys(refresh=True)
        except (jwt.PyJWTError, ValueError) as error:
            self.last_error = str(error) or type(error).__name__
            log.warning("could not fetch the identity provider's keys from %s: %s; "
                        "keeping the %d keys fetched before", self._client.uri,
                        self.last_error, len(self._keys))
            return
        self._keys = {key.key_id: key for key in keys if key.key_id}
        self._fetched_at, self.last_error = self._tried_at, None

    def _why_unknown(self, kid: str) -> str:
        if self._clock() >= self._told_at + self._min_interval:  # a flood logs one line
            self._told_at = self._clock()
            log.warning("a bearer token names the signing key %r, which the identity provider "
                        "does not publish (%s)", kid[:80], self.last_error or "keys fetched")
        if self.last_error is not None:
            return ("its signing key (kid) is not among the identity provider's keys known "
                    "here, and the provider could not be reached to look again")
        return "its signing key (kid) is not one the identity provider publishes"
