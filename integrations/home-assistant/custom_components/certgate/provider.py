"""The login method "Sign in with certificate": an auth provider whose login flow finishes at
once when the browser brings a ticket from certgate (see views.py), and that ends Home
Assistant's sessions when certgate says a sign-in is over.

One Home Assistant credential per certgate session (`sub`, `sid`), all of one person linked to
one Home Assistant user by `sub`: so a back-channel logout for one session removes exactly the
refresh tokens made from it, and one for the person (no `sid`) removes all of theirs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
import logging
import secrets
import time
from typing import Any

from homeassistant.auth import InvalidAuthError
from homeassistant.auth.models import Credentials, RefreshToken, User, UserMeta
from homeassistant.auth.providers import AuthProvider, LoginFlow
from homeassistant.core import HomeAssistant, callback
from homeassistant.data_entry_flow import FlowResult
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.http import current_request
from homeassistant.helpers.storage import Store

from .const import DOMAIN, TICKET_COOKIE
from .oidc import OidcError


_LOGGER = logging.getLogger(__name__)

# A ticket lives this long between certgate's answer and Home Assistant's login page.
TICKET_TTL = 120
MAX_TICKETS = 1000
# How often a session's grant is checked with certgate when its tokens are refreshed (default).
CHECK_EVERY = 60
# The certgate refresh token kept for those checks is renewed when it has less than this left.
RENEW_BEFORE = 7 * 24 * 3600
GROUP_ADMIN = "system-admin"
GROUP_USER = "system-users"


@dataclass
class Ticket:
    """A verified certgate sign-in, waiting for Home Assistant's login flow: for the one
    Home Assistant client and redirect URI the browser's login page asked for."""

    sub: str
    sid: str
    name: str
    groups: list[str]
    client_id: str
    redirect_uri: str
    refresh_token: str | None
    expires: float


@dataclass
class Session:
    """What the integration keeps of one certgate session."""

    refresh_token: str | None = None
    checked: float = 0.0
    checking: bool = False
    revoked: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class CertgateAuthProvider(AuthProvider):
    """Home Assistant's login method backed by certgate."""

    DEFAULT_TITLE = "Sign in with certificate"

    def __init__(self, hass: HomeAssistant, store: Any, config: dict[str, Any], conf: dict[str, Any], oidc: Any) -> None:
        super().__init__(hass, store, config)
        self._conf = conf
        self.oidc = oidc
        self._tickets: dict[str, Ticket] = {}
        self._sessions: dict[str, Session] = {}
        self._store_file: Store = Store(hass, 1, f"{DOMAIN}.sessions", private=True)

    @property
    def type(self) -> str:
        return DOMAIN

    @property
    def support_mfa(self) -> bool:
        # The certificate is the second factor already.
        return False

    async def async_load(self) -> None:
        data = await self._store_file.async_load() or {}
        for cred_id, saved in data.get("sessions", {}).items():
            self._sessions[cred_id] = Session(
                refresh_token=saved.get("refresh_token"), revoked=bool(saved.get("revoked"))
            )

    @callback
    def _save(self) -> None:
        self._store_file.async_delay_save(
            lambda: {
                "sessions": {
                    cid: {"refresh_token": s.refresh_token, "revoked": s.revoked}
                    for cid, s in self._sessions.items()
                }
            },
            1,
        )

    # Tickets: made by the callback view, taken once by the login flow.

    def add_ticket(self, ticket: Ticket) -> str:
        now = time.monotonic()
        self._tickets = {k: t for k, t in self._tickets.items() if t.expires > now}
        while len(self._tickets) >= MAX_TICKETS:
            # The oldest waiting sign-in gives way (its browser starts again).
            self._tickets.pop(next(iter(self._tickets)))
        key = secrets.token_urlsafe(32)
        self._tickets[key] = ticket
        return key

    def silent_client(self, client_id: str) -> bool:
        """Whether a sign-in for this Home Assistant client may finish without a question:
        Home Assistant's own front-end (on the host of `redirect_uri`) and its Companion
        apps, and the clients the config names. Any other client_id would let a link send a
        signed-in person's Home Assistant code to someone else's site."""
        return client_id in self._silent_clients

    @property
    def _silent_clients(self) -> set[str]:
        from urllib.parse import urlsplit

        own = urlsplit(self._conf["redirect_uri"])
        return {
            f"{own.scheme}://{own.netloc}/",
            "https://home-assistant.io/iOS",
            "https://home-assistant.io/android",
            *self._conf.get("client_ids", []),
        }

    def take_ticket(self, key: str | None) -> Ticket | None:
        if not key:
            return None
        ticket = self._tickets.pop(key, None)
        if ticket is None or ticket.expires <= time.monotonic():
            return None
        return ticket

    async def async_login_flow(self, context: dict[str, Any] | None) -> LoginFlow:
        return CertgateLoginFlow(self)

    async def user_for_sub(self, sub: str) -> User | None:
        for cred in await self.async_credentials():
            if cred.data.get("sub") == sub:
                return await self.hass.auth.async_get_user_by_credentials(cred)
        return None

    async def async_get_or_create_credentials(self, flow_result: Mapping[str, Any]) -> Credentials:
        sub, sid = str(flow_result["sub"]), str(flow_result["sid"])
        admin = bool(flow_result.get("admin"))
        for cred in await self.async_credentials():
            if cred.data.get("sub") == sub and cred.data.get("sid") == sid:
                # The same certgate session signing in again (a new grant): this one counts.
                self._sessions[cred.id] = Session(refresh_token=flow_result.get("refresh_token"), checked=time.monotonic())
                self._save()
                await self._set_group(await self.hass.auth.async_get_user_by_credentials(cred), admin)
                return cred
        cred = self.async_create_credentials(
            {
                "sub": sub,
                "sid": sid,
                "name": str(flow_result.get("name") or sub),
                "admin": "1" if flow_result.get("admin") else "0",
            }
        )
        user = await self.user_for_sub(sub)
        if user is not None:
            # The person's next session: the same Home Assistant user.
            await self.hass.auth.async_link_user(user, cred)
            await self._set_group(user, admin)
        self._sessions[cred.id] = Session(refresh_token=flow_result.get("refresh_token"), checked=time.monotonic())
        self._save()
        return cred

    async def _set_group(self, user: User | None, admin: bool) -> None:
        """Administrator exactly while certgate puts the person in an admin group (the owner,
        whom onboarding made, is never changed)."""
        if user is None or user.is_owner:
            return
        group = GROUP_ADMIN if admin else GROUP_USER
        if [g.id for g in user.groups] != [group]:
            await self.hass.auth.async_update_user(user, group_ids=[group])

    async def async_user_meta_for_credentials(self, credentials: Credentials) -> UserMeta:
        admin = credentials.data.get("admin") == "1"
        return UserMeta(
            name=credentials.data.get("name") or credentials.data["sub"],
            is_active=True,
            group=GROUP_ADMIN if admin else GROUP_USER,
            local_only=False,
        )

    # Ending sessions.

    async def end_sessions(self, sub: str | None, sid: str | None) -> int:
        """Removes the refresh tokens of the sessions a logout token names: `sid` (and `sub`,
        when it has both), or every session of `sub`. How many tokens were removed."""
        ended = set()
        for cred in await self.async_credentials():
            if sub is not None and cred.data.get("sub") != sub:
                continue
            if sid is not None and cred.data.get("sid") != sid:
                continue
            ended.add(cred.id)
            self._sessions.setdefault(cred.id, Session()).revoked = True
        removed = await self._remove_tokens(ended)
        self._save()
        return removed

    async def _remove_tokens(self, credential_ids: set[str]) -> int:
        if not credential_ids:
            return 0
        removed = 0
        for user in await self.hass.auth.async_get_users():
            for token in list(user.refresh_tokens.values()):
                if token.credential is not None and token.credential.id in credential_ids:
                    # Also closes the WebSockets opened with its access tokens.
                    self.hass.auth.async_remove_refresh_token(token)
                    removed += 1
        return removed

    @callback
    def async_validate_refresh_token(self, refresh_token: RefreshToken, remote_ip: str | None = None) -> None:
        """Refuses a refresh of a session certgate ended; asks certgate again at most once a
        minute (in the background: this hook cannot wait)."""
        cred = refresh_token.credential
        if cred is None:
            return
        session = self._sessions.get(cred.id)
        if session is None:
            # Made before this integration kept sessions: nothing to check it with.
            return
        if session.revoked:
            raise InvalidAuthError("certgate ended this sign-in")
        now = time.monotonic()
        every = self._conf.get("check_interval", CHECK_EVERY)
        if session.refresh_token and not session.checking and now - session.checked >= every:
            session.checking = True
            self.hass.async_create_task(self._check(cred.id, session))

    async def _check(self, cred_id: str, session: Session) -> None:
        """Asks certgate whether this session's grant lives (introspection of the certgate
        refresh token the sign-in got); renews that token before it expires, since Home
        Assistant's own sessions outlive it."""
        ended = False
        try:
            info = await self.oidc.introspect(session.refresh_token)
            if info is None:
                return
            if info.get("active") is not True:
                ended = True
            elif isinstance(info.get("exp"), int) and info["exp"] - time.time() < RENEW_BEFORE:
                try:
                    tokens = await self.oidc.refresh(session.refresh_token)
                except OidcError as err:
                    # Only certgate's word that the grant is gone ends it; a 503 or a 429
                    # asks again later.
                    ended = err.error == "invalid_grant"
                else:
                    session.refresh_token = tokens.get("refresh_token") or session.refresh_token
                    self._save()
        except Exception as err:  # noqa: BLE001 - certgate unreachable: ask again later
            _LOGGER.warning("certgate could not be asked about a sign-in: %s", err)
        finally:
            session.checking = False
            session.checked = time.monotonic()
        if ended:
            _LOGGER.info("certgate no longer holds this sign-in: its Home Assistant tokens are removed")
            session.revoked = True
            await self._remove_tokens({cred_id})
            self._save()


class CertgateLoginFlow(LoginFlow):
    """Finishes at once with the ticket certgate's sign-in left in the browser; without one
    there is nothing to ask the person (certgate signs them in, not a form)."""

    async def async_step_init(self, user_input: dict[str, str] | None = None) -> FlowResult:
        provider: CertgateAuthProvider = self._auth_provider  # type: ignore[assignment]
        request = current_request.get()
        key = request.cookies.get(TICKET_COOKIE) if request is not None else None
        ticket = provider.take_ticket(key)
        if ticket is None:
            return self.async_abort(reason="no_certificate_sign_in")
        # The ticket is for the client and redirect URI the browser's login page asked for,
        # and only a client that may be signed in silently.
        context = self.context or {}
        if context.get("redirect_uri") != ticket.redirect_uri or not provider.silent_client(ticket.client_id):
            _LOGGER.warning("a certgate sign-in for %s came back to another login (%s): refused", ticket.redirect_uri, context.get("redirect_uri"))
            return self.async_abort(reason="no_certificate_sign_in")
        admin_groups = set(provider._conf.get("admin_groups", []))
        if await provider.user_for_sub(ticket.sub) is None and not provider._conf.get("create_users", True):
            _LOGGER.warning("%s signed in with certgate but has no Home Assistant user, and create_users is off", ticket.sub)
            return self.async_abort(reason="not_allowed")
        return await self.async_finish(
            {
                "sub": ticket.sub,
                "sid": ticket.sid,
                "name": ticket.name,
                "admin": bool(admin_groups.intersection(ticket.groups)),
                "refresh_token": ticket.refresh_token,
            }
        )
