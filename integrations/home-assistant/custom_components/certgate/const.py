"""Names shared by the integration's parts."""

DOMAIN = "certgate"
# The cookie that carries a verified certgate sign-in from the callback to the login page.
TICKET_COOKIE = "certgate_ha_ticket"
# Where the views live (each under /auth/, where Home Assistant's own sign-in lives).
START_PATH = "/auth/certgate/start"
CALLBACK_PATH = "/auth/certgate/callback"
BACKCHANNEL_PATH = "/auth/certgate/backchannel"
