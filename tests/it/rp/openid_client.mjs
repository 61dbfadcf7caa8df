// A relying party built on npm openid-client 6, driven step by step by tests/it/oidc_rp.rs
// (through tests/it/harness/rp.rs), since the authorization step needs the person's client
// certificate, which the Rust test holds:
//
//   node openid_client.mjs start  '<json input>'   prints {authorization_url, code_verifier, state, nonce}
//   node openid_client.mjs finish '<json input>'   prints what the library got and validated
//
// Input (both steps): {modules, issuer, client_id, client_secret?, auth_method, redirect_uri,
// scope, alg?, discovery?}; `finish` also takes {callback_url, code_verifier, state, nonce}. `modules` is the npm
// prefix that holds openid-client (target/test-tools/node). The server's CA is trusted through
// NODE_EXTRA_CA_CERTS. Everything the provider says is checked by the library itself: a
// refusal is an exception, printed as {"error": {...}} on stdout with exit code 1.
import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'
import { join } from 'node:path'

const [step, raw] = process.argv.slice(2)

function fail(err) {
  const error = {
    name: err?.name,
    code: err?.code,
    message: err?.message,
    error: err?.error,
    error_description: err?.error_description,
    status: err?.status,
    cause: err?.cause === undefined ? undefined : describe(err.cause),
  }
  process.stdout.write(JSON.stringify({ error }) + '\n')
  process.exit(1)
}

// An error's cause, as JSON can carry it (a Response's status and body, a plain object as is).
function describe(cause) {
  if (cause instanceof Error) {
    return { name: cause.name, code: cause.code, message: cause.message }
  }
  if (typeof Response !== 'undefined' && cause instanceof Response) {
    return { status: cause.status }
  }
  try {
    return JSON.parse(JSON.stringify(cause))
  } catch {
    return String(cause)
  }
}

// The protected header of a JWS (the library has checked the signature; this only reports it).
function header(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[0], 'base64url').toString())
}

async function main() {
  if (!['start', 'finish'].includes(step) || raw === undefined) {
    throw new Error('usage: openid_client.mjs start|finish <json>')
  }
  const input = JSON.parse(raw)
  const require = createRequire(join(input.modules, 'package.json'))
  const client = await import(pathToFileURL(require.resolve('openid-client')).href)

  const auth =
    input.auth_method === 'none'
      ? client.None()
      : input.auth_method === 'client_secret_post'
        ? client.ClientSecretPost(input.client_secret)
        : client.ClientSecretBasic(input.client_secret)
  // Discovery: every endpoint comes from <issuer>/.well-known/openid-configuration, whose
  // `issuer` the library requires to be the one asked for.
  // The ID token algorithm the client is registered for (RS256 unless said): the library
  // refuses any other.
  const metadata = { id_token_signed_response_alg: input.alg ?? 'RS256' }
  // `discovery: "oauth2"` reads the RFC 8414 alias, <issuer>/.well-known/oauth-authorization-server.
  const config = await client.discovery(new URL(input.issuer), input.client_id, metadata, auth, {
    algorithm: input.discovery === 'oauth2' ? 'oauth2' : 'oidc',
  })
  // Verify ID token signatures against the provider's JWKS too (openid-client skips that for
  // a token endpoint response over TLS unless asked).
  client.enableNonRepudiationChecks(config)
  const server = config.serverMetadata()

  if (step === 'start') {
    const code_verifier = client.randomPKCECodeVerifier()
    const code_challenge = await client.calculatePKCECodeChallenge(code_verifier)
    const state = client.randomState()
    const nonce = client.randomNonce()
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: input.redirect_uri,
      scope: input.scope,
      code_challenge,
      code_challenge_method: 'S256',
      state,
      nonce,
    })
    return {
      authorization_url: url.href,
      code_verifier,
      state,
      nonce,
      discovery: server,
    }
  }

  // finish: the callback URL (the redirect certgate answered), checked by the library (iss per
  // RFC 9207, state), then the code exchanged with the PKCE verifier; the ID token's signature,
  // iss, aud, exp, iat and nonce are validated before this returns.
  const tokens = await client.authorizationCodeGrant(config, new URL(input.callback_url), {
    pkceCodeVerifier: input.code_verifier,
    expectedState: input.state,
    expectedNonce: input.nonce,
    idTokenExpected: true,
  })
  const claims = tokens.claims()
  // userinfo with the access token; the library refuses a `sub` other than the ID token's.
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub)
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token)
  const refreshedClaims = refreshed.id_token ? refreshed.claims() : null
  const refreshedUserinfo = await client.fetchUserInfo(config, refreshed.access_token, claims.sub)
  // The refresh token just rotated away, presented again: a provider that rotates refuses it.
  let oldRefreshReuse
  try {
    await client.refreshTokenGrant(config, tokens.refresh_token)
    oldRefreshReuse = { accepted: true }
  } catch (err) {
    oldRefreshReuse = { accepted: false, error: err?.error, code: err?.code, message: err?.message }
  }
  // Reuse detection: once the old one came back, the family is revoked, so the newest
  // refresh token is refused too.
  let familyAfterReuse
  try {
    await client.refreshTokenGrant(config, refreshed.refresh_token)
    familyAfterReuse = { accepted: true }
  } catch (err) {
    familyAfterReuse = { accepted: false, error: err?.error, code: err?.code, message: err?.message }
  }
  return {
    issuer: server.issuer,
    id_token_header: header(tokens.id_token),
    id_token_claims: claims,
    token_type: tokens.token_type,
    expires_in: tokens.expiresIn(),
    scope: tokens.scope,
    has_access_token: typeof tokens.access_token === 'string' && tokens.access_token.length > 0,
    refresh_token: tokens.refresh_token,
    userinfo,
    refreshed: {
      refresh_token: refreshed.refresh_token,
      access_token_changed: refreshed.access_token !== tokens.access_token,
      id_token_header: refreshed.id_token ? header(refreshed.id_token) : null,
      id_token_claims: refreshedClaims,
      userinfo: refreshedUserinfo,
    },
    old_refresh_reuse: oldRefreshReuse,
    family_after_reuse: familyAfterReuse,
  }
}

main().then(
  (out) => process.stdout.write(JSON.stringify(out) + '\n'),
  fail,
)
