"""A relying party built on PyPI authlib (its requests client and authlib.jose), driven step
by step by tests/it/oidc_rp.rs (through tests/it/harness/rp.rs), since the authorization step
needs the person's client certificate, which the Rust test holds:

    python authlib_client.py start  '<json input>'   prints {authorization_url, code_verifier, state, nonce}
    python authlib_client.py finish '<json input>'   prints what the library got and validated

Input (both steps): {issuer, client_id, client_secret?, auth_method, redirect_uri, scope, alg?};
`finish` also takes {callback_url, code_verifier, state, nonce}. The server's CA is trusted
through REQUESTS_CA_BUNDLE. A refusal (by authlib, or an HTTP error) is printed as
{"error": {...}} on stdout with exit code 1.
"""

import json
import sys
import traceback
import warnings

import requests
from authlib.common.security import generate_token
from authlib.deprecate import AuthlibDeprecationWarning
from authlib.integrations.requests_client import OAuth2Session

# authlib.jose is deprecated in favour of joserfc (kept until authlib 2.0); authlib.deprecate
# turned its warnings to "always" when imported.
warnings.simplefilter("ignore", AuthlibDeprecationWarning)
from authlib.jose import JsonWebKey, JsonWebToken  # noqa: E402


def discover(issuer):
    """The provider's metadata from <issuer>/.well-known/openid-configuration, whose issuer
    must be the one asked for (OpenID Connect Discovery 1.0 §4.3)."""
    r = requests.get(issuer.rstrip("/") + "/.well-known/openid-configuration", timeout=20)
    r.raise_for_status()
    meta = r.json()
    if meta.get("issuer") != issuer:
        raise ValueError(f"discovery names issuer {meta.get('issuer')!r}, not {issuer!r}")
    return meta


def session(cfg, **kw):
    return OAuth2Session(
        client_id=cfg["client_id"],
        client_secret=cfg.get("client_secret"),
        token_endpoint_auth_method=cfg.get("auth_method", "client_secret_basic"),
        scope=cfg["scope"],
        redirect_uri=cfg["redirect_uri"],
        code_challenge_method="S256",
        **kw,
    )


def validate_id_token(id_token, meta, cfg, nonce):
    """authlib.jose checks the signature against the provider's JWKS (the key named by `kid`,
    with the algorithm the client is registered for) and the claims: iss, aud, sub, exp, iat
    essential, iss and aud equal to the issuer and the client, nonce equal to the one sent."""
    jwks = requests.get(meta["jwks_uri"], timeout=20)
    jwks.raise_for_status()
    keys = JsonWebKey.import_key_set(jwks.json())
    jwt = JsonWebToken([cfg.get("alg", "RS256")])
    options = {
        "iss": {"essential": True, "value": meta["issuer"]},
        "aud": {"essential": True, "value": cfg["client_id"]},
        "sub": {"essential": True},
        "exp": {"essential": True},
        "iat": {"essential": True},
    }
    if nonce is not None:
        options["nonce"] = {"essential": True, "value": nonce}
    claims = jwt.decode(id_token, keys, claims_options=options)
    claims.validate(leeway=5)
    return dict(claims), dict(claims.header)


def start(cfg):
    meta = discover(cfg["issuer"])
    code_verifier = generate_token(64)
    nonce = generate_token(24)
    url, state = session(cfg).create_authorization_url(
        meta["authorization_endpoint"], code_verifier=code_verifier, nonce=nonce
    )
    return {
        "authorization_url": url,
        "code_verifier": code_verifier,
        "state": state,
        "nonce": nonce,
    }


def finish(cfg):
    meta = discover(cfg["issuer"])
    sess = session(cfg, state=cfg["state"])
    # authlib refuses a callback whose state is not the one it sent (MismatchingStateException)
    # before it asks the token endpoint anything.
    token = sess.fetch_token(
        meta["token_endpoint"],
        authorization_response=cfg["callback_url"],
        code_verifier=cfg["code_verifier"],
    )
    claims, header = validate_id_token(token["id_token"], meta, cfg, cfg["nonce"])
    userinfo = sess.get(meta["userinfo_endpoint"], timeout=20)
    userinfo.raise_for_status()
    userinfo = userinfo.json()

    old_refresh = token["refresh_token"]
    # authlib keeps the old refresh token when a refresh answers without one: read the answer.
    answered = {}

    def record(resp):
        answered.update(resp.json())
        return resp

    sess.register_compliance_hook("refresh_token_response", record)
    refreshed = sess.refresh_token(meta["token_endpoint"], refresh_token=old_refresh)
    refreshed_claims = None
    refreshed_header = None
    if refreshed.get("id_token"):
        # A refreshed ID token carries no new nonce (OpenID Connect Core 1.0 §12.2).
        refreshed_claims, refreshed_header = validate_id_token(refreshed["id_token"], meta, cfg, None)
    # The session now holds the refreshed access token.
    refreshed_userinfo = sess.get(meta["userinfo_endpoint"], timeout=20)
    refreshed_userinfo.raise_for_status()

    # The refresh token just rotated away, presented again: a provider that rotates refuses it.
    try:
        session(cfg).refresh_token(meta["token_endpoint"], refresh_token=old_refresh)
        reuse = {"accepted": True}
    except Exception as e:  # noqa: BLE001 (whatever authlib raises is the answer)
        reuse = {"accepted": False, "error": getattr(e, "error", None), "message": str(e)}

    # Reuse detection: once the old one came back, the family is revoked, so the newest
    # refresh token is refused too.
    try:
        session(cfg).refresh_token(meta["token_endpoint"], refresh_token=answered.get("refresh_token"))
        family = {"accepted": True}
    except Exception as e:  # noqa: BLE001
        family = {"accepted": False, "error": getattr(e, "error", None), "message": str(e)}

    return {
        "issuer": meta["issuer"],
        "id_token_header": header,
        "id_token_claims": claims,
        "token_type": token.get("token_type"),
        "expires_in": token.get("expires_in"),
        "scope": token.get("scope"),
        "has_access_token": bool(token.get("access_token")),
        "refresh_token": old_refresh,
        "userinfo": userinfo,
        "refreshed": {
            "refresh_token": answered.get("refresh_token"),
            "access_token_changed": refreshed.get("access_token") != token.get("access_token"),
            "id_token_header": refreshed_header,
            "id_token_claims": refreshed_claims,
            "userinfo": refreshed_userinfo.json(),
        },
        "old_refresh_reuse": reuse,
        "family_after_reuse": family,
    }


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("start", "finish"):
        sys.exit("usage: authlib_client.py start|finish <json>")
    cfg = json.loads(sys.argv[2])
    try:
        out = (start if sys.argv[1] == "start" else finish)(cfg)
    except Exception as e:  # noqa: BLE001 (every refusal is reported the same way)
        response = getattr(e, "response", None)
        error = {
            "name": type(e).__name__,
            "error": getattr(e, "error", None),
            "description": getattr(e, "description", None),
            "message": str(e),
            "status": getattr(response, "status_code", None),
            "body": getattr(response, "text", None),
        }
        traceback.print_exc()
        print(json.dumps({"error": error}))
        sys.exit(1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
