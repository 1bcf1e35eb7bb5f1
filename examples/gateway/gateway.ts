// A gateway in front of an API with @keymanager/gateway: every request's bearer token is checked
// (in process from the live copy the key manager streams, or by the key manager itself), refused
// calls get WSO2's gateway error, allowed ones are proxied to the upstream with the consumer key,
// application, tiers and end user in x-* headers.
//
//   KM_GRPC=127.0.0.1:9090 KM_GATEWAY_TOKEN=... UPSTREAM=http://127.0.0.1:9000 \
//   API_CONTEXT=/pizzashack API_VERSION=1.0.0 PORT=8280 npx tsx examples/gateway/gateway.ts
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { createGatewayValidator, createNodeGuard } from "@keymanager/gateway";

const env = (name: string, fallback?: string): string => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) {
    console.error(`set ${name} (see examples/gateway/README.md)`);
    process.exit(2);
  }
  return value;
};

const upstream = new URL(env("UPSTREAM"));
const api = { context: env("API_CONTEXT"), version: env("API_VERSION") };
const clientId = process.env.KM_CLIENT_ID;
const validator = createGatewayValidator({
  target: env("KM_GRPC", "127.0.0.1:9090"),
  // A system client with scope km:gateway: a token as is, or its credentials (tokens renewed before expiry).
  ...(clientId
    ? { credentials: { clientId, clientSecret: env("KM_CLIENT_SECRET") }, tokenUrl: `${env("KM_URL", "http://127.0.0.1:8080")}/oauth2/token` }
    : { token: env("KM_GATEWAY_TOKEN") }),
  // The Watch stream from another address (default KM_GRPC's).
  ...(process.env.KM_WATCH_GRPC ? { watchTarget: process.env.KM_WATCH_GRPC } : {}),
  stalenessBoundMs: Number(env("STALENESS_BOUND_MS", "30000")),
  apiContexts: [api.context],
});
const guard = createNodeGuard({ validator, api: (req) => (req.url?.startsWith(`${api.context}/`) ? api : undefined) });

const server = http.createServer(async (req, res) => {
  try {
    if (!(await guard(req, res))) return;
  } catch (err) {
    console.error("gateway check failed:", err instanceof Error ? err.message : err);
    res.writeHead(500, { "content-type": "application/json" }).end(JSON.stringify({ code: 900900, message: "Unclassified Authentication Failure" }));
    return;
  }
  // Allowed: the request goes on with the key manager's headers (req.headers now carries them).
  const out = http.request(
    { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: { ...req.headers, host: upstream.host } },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    },
  );
  out.on("error", () => {
    if (!res.headersSent) res.writeHead(502).end();
  });
  req.pipe(out);
});

await validator.ready();
server.listen(Number(env("PORT", "8280")), env("HOST", "127.0.0.1"), () => {
  const { port } = server.address() as AddressInfo;
  console.log(JSON.stringify({ listening: port, api, copy: validator.stats().copy }));
});

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.once(signal, () => {
    server.close();
    void validator.close();
  });
}
