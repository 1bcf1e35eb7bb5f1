// Where km's calls go and with which token: --url / KM_URL (the HTTP port: Connect, /oauth2/token,
// /healthz), --token / KM_TOKEN, or a system client's credentials (--client-id/--client-secret,
// KM_CLIENT_ID/KM_CLIENT_SECRET) exchanged for a token at /oauth2/token (client_credentials).
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { type CliContext, type OptionValues, optional, UsageError } from "./command.js";

const DEFAULT_URL = "http://127.0.0.1:8080";
const DEFAULT_TIMEOUT_MS = 30_000;

export function serverContext(values: OptionValues, env: NodeJS.ProcessEnv, stdin: () => Promise<string>): CliContext {
  const url = (optional(values, "url") ?? env.KM_URL ?? DEFAULT_URL).replace(/\/+$/, "");
  const timeoutText = optional(values, "timeout-ms");
  if (timeoutText !== undefined && !/^\d+$/.test(timeoutText)) throw new UsageError(`--timeout-ms ${timeoutText}: not a number`);
  const timeoutMs = timeoutText === undefined ? DEFAULT_TIMEOUT_MS : Number(timeoutText);
  let token: Promise<string> | undefined;
  const bearer = (): Promise<string> => {
    token ??= callerToken(url, values, env, timeoutMs);
    return token;
  };
  const auth: Interceptor = (next) => async (req) => {
    req.header.set("authorization", `Bearer ${await bearer()}`);
    return next(req);
  };
  const transport = createConnectTransport({ baseUrl: url, httpVersion: "1.1", interceptors: [auth], defaultTimeoutMs: timeoutMs });
  return {
    url,
    env,
    stdin,
    client: (service) => createClient(service, transport),
    async http(path, init = {}) {
      const { authenticated = true, ...rest } = init;
      const headers = new Headers(rest.headers);
      if (authenticated) headers.set("authorization", `Bearer ${await bearer()}`);
      return fetch(`${url}${path}`, { ...rest, headers, signal: AbortSignal.timeout(timeoutMs) });
    },
  };
}

async function callerToken(url: string, values: OptionValues, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<string> {
  const given = optional(values, "token") ?? env.KM_TOKEN;
  if (given) return given;
  const clientId = optional(values, "client-id") ?? env.KM_CLIENT_ID;
  const clientSecret = optional(values, "client-secret") ?? env.KM_CLIENT_SECRET;
  if (!clientId || !clientSecret) {
    throw new UsageError("no credentials: give --token (or KM_TOKEN), or a system client's KM_CLIENT_ID and KM_CLIENT_SECRET (km bootstrap makes the first)");
  }
  const res = await fetch(`${url}/oauth2/token`, {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString("base64")}`,
    },
    body: "grant_type=client_credentials",
    signal: AbortSignal.timeout(timeoutMs),
  });
  const body = (await res.json().catch(() => ({}))) as { access_token?: string; error?: string; error_description?: string };
  if (!res.ok || !body.access_token) {
    throw new TokenRefused(
      `no token for client ${clientId} from ${url}/oauth2/token: ${res.status} ${body.error ?? ""} ${body.error_description ?? ""}`.trim(),
    );
  }
  return body.access_token;
}

/** The token endpoint refused the client's credentials. */
export class TokenRefused extends Error {}
