"""certgate's OpenID Connect provider as Home Assistant sees it: discovery, the code exchange,
the ID token and back-channel logout token checks, and introspection.

JOSE is PyJWT's (shipped with Home Assistant); keys come from certgate's JWKS, fetched again
when a token names a key not seen yet (certgate publishes a new key before it signs with it).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import time
from typing import Any

import aiohttp
import jwt

_LOGGER = logging.getLogger(__name__)

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
ALGORITHMS = ["RS256", "ES256", "EdDSA"]
# Clock skew allowed between certgate and Home Assistant.
LEEWAY = 60
# A logout token older than this is refused (its replay after the jti set forgot it).
MAX_LOGOUT_AGE = 120
# How often the JWKS may be fetched again for an unknown key id.
JWKS_REFETCH = 10
TIMEOUT = aiohttp.ClientTimeout(total=10)


class OidcError(Exception):
    """certgate refused, or answered what a provider must not. `error` is the OAuth error
    code certgate answered, when it answered one (`invalid_grant`: the grant is gone)."""

    def __init__(self, message: str, error: str | None = None) -> None:
        super().__init__(message)
        self.error = error


def pkce_pair() -> tuple[str, str]:
    """A PKCE verifier and its S256 challenge (RFC 7636)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    return verifier, challenge


class Oidc:
    """One certgate issuer and this Home Assistant's client there."""

    def __init__(self, session: aiohttp.ClientSession, conf: dict[str, Any]) -> None:
        self._session = session
        self.issuer: str = conf["issuer"].rstrip("/")
        # Where Home Assistant itself reaches certgate (the browser uses the issuer's URLs).
        self._internal: str = (conf.get("internal_url") or self.issuer).rstrip("/")
        self.client_id: str = conf["client_id"]
        self._secret: str | None = conf.get("client_secret")
        self.redirect_uri: str = conf["redirect_uri"]
        self.authorization_endpoint = ""
        self._token_endpoint = ""
        self._introspection_endpoint = ""
        self._jwks_uri = ""
        self._keys: dict[str, jwt.PyJWK] = {}
        self._jwks_fetched = 0.0
        self._seen_jti: dict[str, float] = {}

    @property
    def ready(self) -> bool:
        """Whether certgate's discovery document has been read."""
        return bool(self.authorization_endpoint)

    async def ensure(self) -> None:
        """Reads discovery if it was not yet (certgate was away when Home Assistant started)."""
        if not self.ready:
            await self.discover()

    def _inside(self, url: str) -> str:
        """`url` (under the issuer) as Home Assistant reaches it."""
        if url.startswith(self.issuer + "/"):
            return self._internal + url[len(self.issuer) :]
        return url

    def _auth(self) -> aiohttp.BasicAuth | None:
        return aiohttp.BasicAuth(self.client_id, self._secret) if self._secret else None

    async def discover(self) -> None:
        """Reads certgate's discovery document; raises OidcError when it is not certgate's."""
        url = self._internal + "/.well-known/openid-configuration"
        async with self._session.get(url, timeout=TIMEOUT) as resp:
            if resp.status != 200:
                raise OidcError(f"{url} answered {resp.status}")
            doc = await resp.json(content_type=None)
        if doc.get("issuer", "").rstrip("/") != self.issuer:
            raise OidcError(
                f"{url} names the issuer {doc.get('issuer')!r}, not {self.issuer!r}: "
                "set certgate.issuer to certgate's public_url"
            )
        self.authorization_endpoint = doc["authorization_endpoint"]
        self._token_endpoint = self._inside(doc["token_endpoint"])
        self._introspection_endpoint = self._inside(doc.get("introspection_endpoint", ""))
        self._jwks_uri = self._inside(doc["jwks_uri"])
        await self._fetch_jwks()

    async def _fetch_jwks(self) -> None:
        self._jwks_fetched = time.monotonic()
        async with self._session.get(self._jwks_uri, timeout=TIMEOUT) as resp:
            if resp.status != 200:
                raise OidcError(f"{self._jwks_uri} answered {resp.status}")
            jwks = await resp.json(content_type=None)
        keys = {}
        for jwk in jwks.get("keys", []):
            try:
                keys[jwk["kid"]] = jwt.PyJWK(jwk)
            except (KeyError, jwt.PyJWTError) as err:
                _LOGGER.debug("certgate JWKS key skipped: %s", err)
        self._keys = keys

    async def _key(self, token: str) -> tuple[jwt.PyJWK, str]:
        await self.ensure()
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as err:
            raise OidcError(f"not a JWT: {err}") from err
        kid, alg = header.get("kid"), header.get("alg")
        if alg not in ALGORITHMS:
            raise OidcError(f"algorithm {alg!r} is not one certgate signs with")
        if kid not in self._keys and time.monotonic() - self._jwks_fetched > JWKS_REFETCH:
            await self._fetch_jwks()
        key = self._keys.get(kid)
        if key is None:
            raise OidcError(f"no key {kid!r} in certgate's JWKS")
        return key, alg

    async def _token(self, form: dict[str, str], what: str) -> dict[str, Any]:
        """The token endpoint's answer to `form` (raises OidcError when certgate refuses)."""
        await self.ensure()
        if not self._secret:
            form["client_id"] = self.client_id
        async with self._session.post(
            self._token_endpoint, data=form, auth=self._auth(), timeout=TIMEOUT
        ) as resp:
            body = await resp.json(content_type=None)
            if resp.status != 200:
                error = body.get("error") if isinstance(body, dict) else None
                raise OidcError(
                    f"the {what} answered {resp.status}: {error} "
                    f"{body.get('error_description', '') if isinstance(body, dict) else ''}",
                    error if resp.status == 400 and isinstance(error, str) else None,
                )
        return body

    async def exchange(self, code: str, verifier: str) -> dict[str, Any]:
        """The token response for `code` (raises OidcError when certgate refuses)."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": verifier,
        }
        return await self._token(form, "code exchange")

    async def id_token_claims(self, token: str, nonce: str) -> dict[str, Any]:
        """The claims of a valid ID token for this client with `nonce`."""
        key, alg = await self._key(token)
        try:
            claims = jwt.decode(
                token,
                key=key.key,
                algorithms=[alg],
                audience=self.client_id,
                issuer=self.issuer,
                leeway=LEEWAY,
                options={"require": ["iss", "aud", "exp", "iat", "sub"]},
            )
        except jwt.PyJWTError as err:
            raise OidcError(f"ID token refused: {err}") from err
        if not secrets.compare_digest(str(claims.get("nonce", "")), nonce):
            raise OidcError("ID token refused: its nonce is not this sign-in's")
        return claims

    async def logout_claims(self, token: str) -> dict[str, Any]:
        """The claims of a valid back-channel logout token (Back-Channel Logout 1.0 §2.6),
        each seen once; raises OidcError otherwise."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as err:
            raise OidcError(f"not a JWT: {err}") from err
        if header.get("typ") not in (None, "logout+jwt", "JWT"):
            raise OidcError(f"typ {header.get('typ')!r} is no logout token's")
        key, alg = await self._key(token)
        try:
            claims = jwt.decode(
                token,
                key=key.key,
                algorithms=[alg],
                audience=self.client_id,
                issuer=self.issuer,
                leeway=LEEWAY,
                options={"require": ["iss", "aud", "iat", "jti"]},
            )
        except jwt.PyJWTError as err:
            raise OidcError(f"logout token refused: {err}") from err
        events = claims.get("events")
        if not isinstance(events, dict) or BACKCHANNEL_EVENT not in events:
            raise OidcError("logout token refused: no back-channel logout event")
        if "nonce" in claims:
            raise OidcError("logout token refused: it has a nonce")
        if not (isinstance(claims.get("sub"), str) or isinstance(claims.get("sid"), str)):
            raise OidcError("logout token refused: neither sub nor sid")
        now = time.time()
        iat = claims.get("iat")
        if not isinstance(iat, (int, float)) or abs(now - iat) > MAX_LOGOUT_AGE:
            raise OidcError("logout token refused: issued too long ago (or in the future)")
        self._seen_jti = {j: t for j, t in self._seen_jti.items() if t > now}
        jti = str(claims["jti"])
        if jti in self._seen_jti:
            raise OidcError("logout token refused: its jti was seen already")
        self._seen_jti[jti] = now + MAX_LOGOUT_AGE + LEEWAY
        return claims

    async def introspect(self, refresh_token: str) -> dict[str, Any] | None:
        """certgate's word on `refresh_token` (RFC 7662: `active`, `exp`); None when certgate
        cannot be asked."""
        try:
            await self.ensure()
        except Exception:  # noqa: BLE001 - certgate away: ask again later
            return None
        if not self._introspection_endpoint:
            return None
        form = {"token": refresh_token, "token_type_hint": "refresh_token"}
        if not self._secret:
            form["client_id"] = self.client_id
        try:
            async with self._session.post(
                self._introspection_endpoint, data=form, auth=self._auth(), timeout=TIMEOUT
            ) as resp:
                if resp.status != 200:
                    return None
                body = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as err:
            _LOGGER.warning("certgate introspection failed: %s", err)
            return None
        return body if isinstance(body, dict) else None

    async def refresh(self, refresh_token: str) -> dict[str, Any]:
        """A new token pair for `refresh_token` (rotated: the old one is spent). Raises
        OidcError when certgate refuses (the grant is gone)."""
        return await self._token({"grant_type": "refresh_token", "refresh_token": refresh_token}, "refresh")
