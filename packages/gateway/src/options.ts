import { z } from "zod";

const positiveMs = (max: number) => z.number().int().positive().max(max);

/** createGatewayValidator's options: every bound of the library, with its default. */
export const gatewayValidatorOptionsSchema = z
  .object({
    /** The key manager's gRPC port, "host:port" or a URL (http://, https://): gRPC protocol. */
    target: z.string().min(1).optional(),
    /** Or its HTTP port as a URL: Connect protocol over HTTP/2 (h2c, or ALPN h2 with TLS). */
    baseUrl: z.url({ protocol: /^https?$/ }).optional(),
    /** A bearer token of a system client with scope km:gateway, sent as is. */
    token: z.string().min(1).optional(),
    /** Or that client's credentials: tokens got from tokenUrl (client_credentials) and renewed before they expire. */
    credentials: z.object({ clientId: z.string().min(1), clientSecret: z.string().min(1), scopes: z.array(z.string()).optional() }).optional(),
    /** The token endpoint; default: baseUrl + /oauth2/token (give it with target). */
    tokenUrl: z.url({ protocol: /^https?$/ }).optional(),
    /** TLS to the key manager: CA to trust (PEM), a client certificate and key (PEM) for mTLS. */
    tls: z
      .object({
        ca: z.union([z.string(), z.instanceof(Buffer)]).optional(),
        cert: z.union([z.string(), z.instanceof(Buffer)]).optional(),
        key: z.union([z.string(), z.instanceof(Buffer)]).optional(),
        servername: z.string().optional(),
      })
      .optional(),
    /** Keep a live copy from the server's Watch stream and decide from it (false: ask the server for every call). */
    watch: z.boolean().default(true),
    /** The Watch stream's gRPC address ("host:port" or URL), when not target's: a replica set aside for gateways' streams. */
    watchTarget: z.string().min(1).optional(),
    /** The copy holds only these APIs (by context, every version) and their subscriptions; empty: every API. */
    apiContexts: z.array(z.string().min(1)).max(10_000).default([]),
    /** The copy holds only key mappings of this key type; default both. */
    keyType: z.enum(["PRODUCTION", "SANDBOX"]).optional(),
    /** The copy is not decided from once it shows a state older than this (its stream down): the server is asked instead. */
    stalenessBoundMs: positiveMs(3_600_000).default(30_000),
    /** How long a check waits for the server's answer, reconnections included. */
    callTimeoutMs: positiveMs(600_000).default(5_000),
    /** Checks waiting for the server at most; past that a call is answered 900912 at once. */
    maxPending: z.number().int().positive().max(1_000_000).default(10_000),
    /** First wait before reopening a failed stream, doubled each failure up to reconnectMaxDelayMs. */
    reconnectInitialDelayMs: positiveMs(60_000).default(100),
    reconnectMaxDelayMs: positiveMs(600_000).default(5_000),
    /** External key managers' JWKS and metadata fetches (their JWTs verified in process) give up after this long: the server is asked instead. */
    jwksTimeoutMs: positiveMs(60_000).default(3_000),
    /** Opaque tokens' facts kept (the server's answers), and JWTs' verified signatures, at most (each). */
    tokenCacheMax: z.number().int().positive().max(10_000_000).default(10_000),
  })
  .refine((o) => (o.target === undefined) !== (o.baseUrl === undefined), { message: "give either target (the gRPC port) or baseUrl (the HTTP port)" })
  .refine((o) => (o.token === undefined) !== (o.credentials === undefined), { message: "give either token or credentials" })
  .refine((o) => o.watchTarget === undefined || o.target !== undefined, { message: "watchTarget goes with target (the gRPC port)" })
  .refine((o) => o.reconnectMaxDelayMs >= o.reconnectInitialDelayMs, { message: "reconnectMaxDelayMs cannot be below reconnectInitialDelayMs" });

export type GatewayValidatorOptions = z.input<typeof gatewayValidatorOptionsSchema>;
export type ResolvedOptions = z.output<typeof gatewayValidatorOptionsSchema>;

/** The options checked, with defaults; a TypeError naming each problem. */
export function resolveOptions(options: GatewayValidatorOptions): ResolvedOptions {
  const parsed = gatewayValidatorOptionsSchema.safeParse(options);
  if (!parsed.success) {
    // Values are never echoed: a token or secret might be among them.
    const problems = parsed.error.issues.map((i) => `${i.path.join(".") || "options"}: ${i.message}`).join("; ");
    throw new TypeError(`createGatewayValidator: ${problems}`);
  }
  return parsed.data;
}
