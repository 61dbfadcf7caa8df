"""certgate: sign in to Home Assistant with the client certificate, through certgate's OpenID
Connect provider, and be signed out everywhere when certgate revokes the person or device.

configuration.yaml:

    certgate:
      issuer: https://auth.example.com          # certgate's public_url
      internal_url: http://127.0.0.1:8080       # optional: how Home Assistant reaches certgate
      client_id: home-assistant
      client_secret: !secret certgate_client_secret
      redirect_uri: https://ha.example.com/auth/certgate/callback
      create_users: true                        # make a Home Assistant user at first sign-in
      admin_groups: [admins]                    # certgate groups that make an administrator
      check_interval: 60                        # s between grant checks on token refresh

The login method is put first on Home Assistant's login page. There is no public API to add
one, so it goes into `hass.auth._providers`, as every integration that adds one does.
"""

from __future__ import annotations

import logging
from typing import Any

import voluptuous as vol

from homeassistant.core import HomeAssistant
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.typing import ConfigType

from .const import DOMAIN
from .oidc import Oidc, OidcError
from .provider import CertgateAuthProvider
from .views import BackchannelView, CallbackView, StartView

_LOGGER = logging.getLogger(__name__)

CONFIG_SCHEMA = vol.Schema(
    {
        DOMAIN: vol.Schema(
            {
                vol.Required("issuer"): cv.url,
                vol.Optional("internal_url"): cv.url,
                vol.Required("client_id"): cv.string,
                vol.Optional("client_secret"): cv.string,
                vol.Required("redirect_uri"): cv.url,
                vol.Optional("name", default="Sign in with certificate"): cv.string,
                vol.Optional("create_users", default=True): cv.boolean,
                vol.Optional("admin_groups", default=[]): vol.All(cv.ensure_list, [cv.string]),
                vol.Optional("verify_ssl", default=True): cv.boolean,
                # Further OAuth clients of Home Assistant a sign-in may finish for without a
                # question (its own front-end and Companion apps always may).
                vol.Optional("client_ids", default=[]): vol.All(cv.ensure_list, [cv.string]),
                # Seconds between two checks of one sign-in with certgate when Home Assistant
                # refreshes its tokens (back-channel logout is the fast path; this catches one
                # that never arrived).
                vol.Optional("check_interval", default=60): vol.All(vol.Coerce(int), vol.Range(min=1, max=3600)),
            }
        )
    },
    extra=vol.ALLOW_EXTRA,
)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    conf: dict[str, Any] = config[DOMAIN]
    oidc = Oidc(async_get_clientsession(hass, verify_ssl=conf["verify_ssl"]), conf)
    try:
        await oidc.discover()
    except (OidcError, OSError, ValueError, KeyError) as err:
        # The views stay: the start asks again, and offers Home Assistant's own login meanwhile.
        _LOGGER.error("certgate at %s cannot be used yet: %s", conf.get("internal_url") or conf["issuer"], err)
    except Exception as err:  # noqa: BLE001 - aiohttp's errors, a timeout
        _LOGGER.error("certgate at %s cannot be reached yet: %s", conf.get("internal_url") or conf["issuer"], err)
    provider = CertgateAuthProvider(
        hass,
        hass.auth._store,  # noqa: SLF001 - the store every auth provider is built with
        {"type": DOMAIN, "id": None, "name": conf["name"]},
        conf,
        oidc,
    )
    await provider.async_load()
    providers = hass.auth._providers  # noqa: SLF001 - no public API adds a login method
    ordered = {(provider.type, provider.id): provider, **providers}
    providers.clear()
    providers.update(ordered)
    start = StartView(provider)
    hass.http.register_view(start)
    hass.http.register_view(CallbackView(provider, start))
    hass.http.register_view(BackchannelView(provider))
    _LOGGER.info("certgate sign-in ready: issuer %s, client %s", oidc.issuer, oidc.client_id)
    return True
