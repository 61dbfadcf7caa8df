"""The integration's three endpoints, none behind Home Assistant's own authentication:

- `/auth/certgate/start`: where the proxy sends Home Assistant's login page; remembers that
  page's request and sends the browser to certgate's `/oidc/authorize` (PKCE, nonce, state).
- `/auth/certgate/callback`: certgate's answer; redeems the code, checks the ID token, leaves a
  one-time ticket in a cookie and sends the browser back to Home Assistant's login page, whose
  "Sign in with certificate" flow takes the ticket and finishes without a question.
- `/auth/certgate/backchannel`: certgate's back-channel logout tokens (certgate posts them
  itself, not through the proxy); a valid one removes that session's Home Assistant tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
import html
import logging
import secrets
import time
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from homeassistant.components.http import HomeAssistantView

from .const import BACKCHANNEL_PATH, CALLBACK_PATH, START_PATH, TICKET_COOKIE
from .oidc import OidcError, pkce_pair
from .provider import TICKET_TTL, CertgateAuthProvider, Ticket

_LOGGER = logging.getLogger(__name__)

SCOPE = "openid profile groups offline_access"
# A sign-in started at certgate must come back within this.
PENDING_TTL = 600
MAX_PENDING = 1000
MAX_PARAM = 2048


@dataclass
class Pending:
    verifier: str
    nonce: str
    client_id: str
    redirect_uri: str
    return_to: str
    # SHA-256 of the cookie that binds the sign-in to the browser that started it.
    browser: str
    expires: float


# Set by the start, checked by the callback: an answer from certgate counts only in the browser
# that asked (no one can hand a victim a callback URL that signs them in as someone else).
STATE_COOKIE = "certgate_ha_state"


def _digest(value: str) -> str:
    import hashlib

    return hashlib.sha256(value.encode()).hexdigest()


def _page(status: int, title: str, text: str) -> web.Response:
    body = (
        "<!doctype html><meta charset=utf-8><meta name=viewport content='width=device-width'>"
        f"<title>{html.escape(title)}</title><h1>{html.escape(title)}</h1>"
        f"<p>{html.escape(text)}</p><p><a href='/'>Open Home Assistant again</a></p>"
    )
    return web.Response(
        status=status,
        text=body,
        content_type="text/html",
        headers={"Cache-Control": "no-store"},
    )


class StartView(HomeAssistantView):
    url = START_PATH
    name = "certgate:start"
    requires_auth = False

    def __init__(self, provider: CertgateAuthProvider) -> None:
        self._provider = provider
        self.pending: dict[str, Pending] = {}

    async def get(self, request: web.Request) -> web.Response:
        q = request.query
        client_id, redirect_uri = q.get("client_id", ""), q.get("redirect_uri", "")
        state = q.get("state", "")
        if not client_id or not redirect_uri or max(map(len, (client_id, redirect_uri, state))) > MAX_PARAM:
            return _page(400, "Not a sign-in", "Home Assistant's login page sends here with client_id and redirect_uri.")
        if not self._provider.silent_client(client_id):
            return _page(
                400,
                "Not Home Assistant's own app",
                f"certgate signs in Home Assistant's own apps only, and {client_id} is not one. "
                "Use Home Assistant's own login for it.",
            )
        oidc = self._provider.oidc
        try:
            await oidc.ensure()
        except Exception as err:  # noqa: BLE001 - certgate away: Home Assistant's own login stays
            _LOGGER.warning("certgate cannot be reached: %s", err)
            back = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "certgate": "1"}
            if state:
                back["state"] = state
            return _page(
                503,
                "certgate cannot be reached",
                "Try again in a moment, or use Home Assistant's own login: "
                + "/auth/authorize?" + urlencode(back),
            )
        now = time.monotonic()
        self.pending = {k: p for k, p in self.pending.items() if p.expires > now}
        while len(self.pending) >= MAX_PENDING:
            # The oldest unfinished sign-in gives way.
            self.pending.pop(next(iter(self.pending)))
        back = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri}
        if state:
            back["state"] = state
        back["certgate"] = "1"
        verifier, challenge = pkce_pair()
        key, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        browser = secrets.token_urlsafe(24)
        # A path on this host only: nothing a request can turn into an open redirect.
        self.pending[key] = Pending(
            verifier,
            nonce,
            client_id,
            redirect_uri,
            "/auth/authorize?" + urlencode(back),
            _digest(browser),
            now + PENDING_TTL,
        )
        to = oidc.authorization_endpoint + "?" + urlencode(
            {
                "response_type": "code",
                "client_id": oidc.client_id,
                "redirect_uri": oidc.redirect_uri,
                "scope": SCOPE,
                "state": key,
                "nonce": nonce,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
        response = web.HTTPFound(to, headers={"Cache-Control": "no-store"})
        response.set_cookie(
            STATE_COOKIE,
            browser,
            path="/auth/certgate",
            max_age=PENDING_TTL,
            secure=True,
            httponly=True,
            samesite="Lax",
        )
        raise response


class CallbackView(HomeAssistantView):
    url = CALLBACK_PATH
    name = "certgate:callback"
    requires_auth = False

    def __init__(self, provider: CertgateAuthProvider, start: StartView) -> None:
        self._provider = provider
        self._start = start

    async def get(self, request: web.Request) -> web.Response:
        q = request.query
        pending = self._start.pending.get(q.get("state", ""))
        if pending is None or pending.expires <= time.monotonic():
            return _page(400, "This sign-in is stale", "It was used already or took too long.")
        browser = request.cookies.get(STATE_COOKIE, "")
        if not secrets.compare_digest(_digest(browser), pending.browser):
            return _page(400, "Not this browser's sign-in", "Open Home Assistant again in this browser.")
        self._start.pending.pop(q.get("state", ""), None)
        oidc = self._provider.oidc
        if "iss" in q and q["iss"].rstrip("/") != oidc.issuer:
            return _page(400, "Not certgate's answer", "The answer names another issuer (RFC 9207).")
        if "error" in q:
            return _page(
                403,
                "certgate did not sign you in",
                f"{q.get('error')}: {q.get('error_description', '')}",
            )
        try:
            tokens = await oidc.exchange(q.get("code", ""), pending.verifier)
            claims = await oidc.id_token_claims(str(tokens.get("id_token", "")), pending.nonce)
        except OidcError as err:
            _LOGGER.warning("certgate sign-in refused: %s", err)
            return _page(403, "certgate did not sign you in", str(err))
        except Exception as err:  # noqa: BLE001 - certgate unreachable or not JSON
            _LOGGER.warning("certgate sign-in failed: %s", err)
            return _page(503, "certgate cannot be reached", "Try again in a moment.")
        sid = claims.get("sid")
        if not isinstance(sid, str) or not sid:
            return _page(403, "certgate did not sign you in", "The ID token has no sid: back-channel logout could not reach this sign-in.")
        groups = claims.get("groups") if isinstance(claims.get("groups"), list) else []
        ticket = self._provider.add_ticket(
            Ticket(
                sub=str(claims["sub"]),
                sid=sid,
                name=str(claims.get("name") or claims.get("preferred_username") or claims["sub"]),
                groups=[str(g) for g in groups],
                client_id=pending.client_id,
                redirect_uri=pending.redirect_uri,
                refresh_token=tokens.get("refresh_token"),
                expires=time.monotonic() + TICKET_TTL,
            )
        )
        response = web.HTTPFound(pending.return_to, headers={"Cache-Control": "no-store"})
        response.del_cookie(STATE_COOKIE, path="/auth/certgate")
        response.set_cookie(
            TICKET_COOKIE,
            ticket,
            path="/auth",
            max_age=TICKET_TTL,
            secure=True,
            httponly=True,
            samesite="Lax",
        )
        raise response


class BackchannelView(HomeAssistantView):
    url = BACKCHANNEL_PATH
    name = "certgate:backchannel"
    requires_auth = False

    def __init__(self, provider: CertgateAuthProvider) -> None:
        self._provider = provider

    async def post(self, request: web.Request) -> web.Response:
        form: Any = await request.post()
        token = form.get("logout_token")
        headers = {"Cache-Control": "no-store"}
        if not isinstance(token, str) or not token or len(token) > 16384:
            return self.json({"error": "invalid_request", "error_description": "no logout_token"}, 400, headers)
        try:
            claims = await self._provider.oidc.logout_claims(token)
        except OidcError as err:
            _LOGGER.warning("certgate back-channel logout refused: %s", err)
            return self.json({"error": "invalid_request", "error_description": str(err)}, 400, headers)
        except Exception as err:  # noqa: BLE001 - JWKS unreachable: certgate tries again
            _LOGGER.warning("certgate back-channel logout could not be checked: %s", err)
            return self.json({"error": "temporarily_unavailable"}, 503, headers)
        sub = claims.get("sub") if isinstance(claims.get("sub"), str) else None
        sid = claims.get("sid") if isinstance(claims.get("sid"), str) else None
        removed = await self._provider.end_sessions(sub, sid)
        _LOGGER.info("certgate ended the sign-in of %s (session %s): %d Home Assistant tokens removed", sub, sid, removed)
        return self.json({}, 200, headers)
