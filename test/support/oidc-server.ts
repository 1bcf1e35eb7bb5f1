import { randomBytes } from "node:crypto";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { PassThrough } from "node:stream";
import Provider from "oidc-provider";

export interface ExternalServer {
  issuer: string;
  provider: Provider;
  /** The registration initial access token (RFC 7591) the key manager is configured with. */
  initialAccessToken: string;
  /** This key manager's own client there: introspection and revocation. */
  serviceClient: { clientId: string; clientSecret: string };
  /** Requests received whose path ends with `suffix`. */
  requests(suffix: string): number;
  /** Stops answering: new connections are refused, open ones closed. */
  stop(): Promise<void>;
}

export interface OidcServerOptions {
  /** Access tokens as JWTs (RFC 9068) signed with its JWKS, for `jwtAudience` unless a request names a `resource`. */
  jwtAccessTokens?: boolean;
  /** The aud of its JWT access tokens (default urn:weather-api): another server's token endpoint, to use them as assertions there. */
  jwtAudience?: string;
  /** More clients (client_credentials), each with the subject (sub) its tokens name (default: its client_id). */
  clients?: Array<{ clientId: string; clientSecret: string; subject?: string }>;
  /** Scopes it knows (default read, write). */
  scopes?: string[];
}

/** Opaque tokens of 384 random bits: 64 characters, unlike the resident key manager's 43. */
export const EXTERNAL_TOKEN_PATTERN = "[A-Za-z0-9_-]{64}";

/**
 * A real OAuth2 server (oidc-provider, in memory) on a loopback port: dynamic registration with
 * an initial access token and RFC 7592 management (a new secret on every update, as RFC 7592
 * section 2.2 allows), client_credentials, introspection and revocation; access tokens are
 * opaque, or JWTs signed with its JWKS with `jwtAccessTokens`. Like most servers issuing JWT access
 * tokens (and oidc-provider 9 itself), it refuses to revoke a JWT with RFC 7009's
 * unsupported_token_type; oidc-provider 8, the release that runs on Node 20, would answer 200 and
 * revoke nothing, so that answer is given here before the provider sees the request.
 */
export async function startOidcServer(options: OidcServerOptions = {}): Promise<ExternalServer> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const serviceClient = { clientId: "keymanager-service", clientSecret: randomBytes(24).toString("base64url") };
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: serviceClient.clientId,
        client_secret: serviceClient.clientSecret,
        grant_types: ["client_credentials"],
        redirect_uris: [],
        response_types: [],
      },
      ...(options.clients ?? []).map((c) => ({
        client_id: c.clientId,
        client_secret: c.clientSecret,
        grant_types: ["client_credentials"],
        redirect_uris: [],
        response_types: [],
      })),
    ],
    scopes: options.scopes ?? ["read", "write"],
    cookies: { keys: [randomBytes(16).toString("hex")] },
    formats: {
      bitsOfOpaqueRandomness: 384,
      // A client's tokens name the subject given for it, as a user's token would.
      customizers: {
        jwt: (_ctx: unknown, token: { clientId?: string }, jwt: { payload: Record<string, unknown> }) => {
          const subject = options.clients?.find((c) => c.clientId === token.clientId)?.subject;
          if (subject) jwt.payload.sub = subject;
        },
      },
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      registration: {
        enabled: true,
        initialAccessToken: true,
        policies: {
          "new-secret-on-update": (ctx, properties) => {
            if (ctx.method === "PUT") properties.client_secret = randomBytes(32).toString("base64url");
          },
        },
      },
      registrationManagement: { enabled: true },
      // JWT access tokens (RFC 9068) for one resource server, the default of every token request.
      ...(options.jwtAccessTokens
        ? {
            resourceIndicators: {
              enabled: true,
              defaultResource: () => options.jwtAudience ?? "urn:weather-api",
              useGrantedResource: () => true,
              getResourceServerInfo: () => ({
                scope: (options.scopes ?? ["read", "write"]).join(" "),
                accessTokenFormat: "jwt",
                ...(options.jwtAudience ? { accessTokenTTL: 300 } : {}),
                jwt: { sign: { alg: "RS256" } },
              }),
            },
          }
        : {}),
    },
  });
  provider.on("server_error", () => {});
  const seen: string[] = [];
  const handle = provider.callback();
  server.on("request", (req: http.IncomingMessage, res: http.ServerResponse) => {
    const path = new URL(req.url ?? "/", issuer).pathname;
    seen.push(path);
    if (path === "/token/revocation" && req.method === "POST") void refuseStructuredTokens(req, res, handle);
    else handle(req, res);
  });
  const initialAccessToken = await new provider.InitialAccessToken({ policies: ["new-secret-on-update"] }).save();
  return {
    issuer,
    provider,
    initialAccessToken,
    serviceClient,
    requests: (suffix) => seen.filter((path) => path.endsWith(suffix)).length,
    async stop() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}

/**
 * RFC 7009 section 2.2.1: a JWT (three dot-separated parts) in a revocation request is answered
 * 400 unsupported_token_type; any other request goes on to the provider with its body replayed.
 */
async function refuseStructuredTokens(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  handle: (req: http.IncomingMessage, res: http.ServerResponse) => void,
): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const body = Buffer.concat(chunks);
  const token = new URLSearchParams(body.toString("utf8")).get("token") ?? "";
  if (/^[\w-]+\.[\w-]+\.[\w-]+$/.test(token)) {
    res.writeHead(400, { "content-type": "application/json", "cache-control": "no-store" });
    res.end(JSON.stringify({ error: "unsupported_token_type", error_description: "structured tokens cannot be revoked" }));
    return;
  }
  const replay = Object.assign(new PassThrough(), {
    headers: req.headers,
    rawHeaders: req.rawHeaders,
    method: req.method,
    url: req.url,
    httpVersion: req.httpVersion,
    httpVersionMajor: req.httpVersionMajor,
    httpVersionMinor: req.httpVersionMinor,
    socket: req.socket,
    connection: req.socket,
  });
  replay.end(body);
  handle(replay as unknown as http.IncomingMessage, res);
}
