// Signs a user in with the authorization code flow, PKCE and OpenID Connect, as a native or
// command-line app would: openid-client discovers the key manager, the user opens the printed URL
// in a browser, signs in and allows; the key manager sends the browser back to this program's
// loopback callback, and the code is exchanged for tokens.
//   KM_HTTP        the key manager's HTTP port (default http://127.0.0.1:8080)
//   CLIENT_ID      a public client (token_endpoint_auth_method "none") with this callback URL:
//   CALLBACK_PORT  http://127.0.0.1:$CALLBACK_PORT/callback (default 8765)
import { createServer } from "node:http";
import * as client from "openid-client";

const issuer = new URL(process.env.KM_HTTP ?? "http://127.0.0.1:8080");
const port = Number(process.env.CALLBACK_PORT ?? 8765);
const redirectUri = `http://127.0.0.1:${port}/callback`;

// Plain HTTP only because the key manager listens on loopback here; use its TLS address otherwise.
const config = await client.discovery(issuer, process.env.CLIENT_ID ?? "", undefined, client.None(), { execute: [client.allowInsecureRequests] });

const codeVerifier = client.randomPKCECodeVerifier();
const state = client.randomState();
const nonce = client.randomNonce();
const url = client.buildAuthorizationUrl(config, {
  redirect_uri: redirectUri,
  scope: "openid profile email",
  code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
  code_challenge_method: "S256",
  state,
  nonce,
});

// The browser comes back here with the code (or an error) once the user has answered.
const callback = await new Promise<URL>((resolve) => {
  const server = createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/plain" }).end("Signed in: you can close this window.\n");
    server.close();
    resolve(new URL(req.url ?? "/", redirectUri));
  });
  server.listen(port, "127.0.0.1", () => console.log(`Open this URL in a browser: ${url.href}`));
});

const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: codeVerifier, expectedState: state, expectedNonce: nonce });
const claims = tokens.claims();
const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims?.sub ?? "");
console.log(JSON.stringify({ scope: tokens.scope, expires_in: tokens.expires_in, refresh: Boolean(tokens.refresh_token), claims, userinfo }, null, 2));
