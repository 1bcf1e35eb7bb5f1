import { isIP } from "node:net";
import { z } from "zod";
import { externalKeyManagersSection } from "./external-key-managers.js";
import { keyManagerFeaturesSection } from "./key-manager-features.js";

const port = z.coerce.number().int().min(0).max(65535);
const seconds = z.coerce
  .number()
  .int()
  .min(1)
  .max(10 * 365 * 24 * 3600);
const host = z.string().min(1);
const ms = (max: number) => z.coerce.number().int().min(0).max(max);
/** A timeout in milliseconds: at least 100 ms, at most a day. */
const timeout = z.coerce
  .number()
  .int()
  .min(100)
  .max(24 * 3_600_000);
const count = (max: number) => z.coerce.number().int().min(1).max(max);
/** grpc.stream_write_ahead's default: answers of a bidi stream written ahead (src/transport/grpc-write-ahead.ts). */
export const DEFAULT_STREAM_WRITE_AHEAD = 128;
/** A list in the file, or comma-separated in an environment variable. */
const list = <T extends z.ZodType>(item: T) =>
  z.preprocess(
    (v) =>
      typeof v === "string"
        ? v
            .split(",")
            .map((s) => s.trim())
            .filter(Boolean)
        : v,
    z.array(item),
  );
/** An HTTP header name, compared lower-case. */
const headerName = z
  .string()
  .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$/, { message: "must be an HTTP header name" })
  .transform((h) => h.toLowerCase());
const upstreamHeader = z.union([headerName, z.literal("")]);
const addressOrRange = z.string().refine(
  (v) => {
    const [address = "", prefix, ...rest] = v.split("/");
    const family = isIP(address);
    const bits = family === 6 ? 128 : 32;
    return family !== 0 && rest.length === 0 && (prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= bits));
  },
  { message: "must be an IP address or CIDR range" },
);

/** The `[key_manager]` section of the deployment file, like WSO2's `[apim.key_manager]`. */
export const keyManagerSection = z
  .object({
    name: z.string().min(1).max(100).default("Resident Key Manager"),
    type: z.enum(["resident"]).default("resident"),
    token_type: z.enum(["opaque", "jwt"]).default("opaque"),
    /** Base URL of the OAuth2 endpoints; derived from the HTTP listener when empty. */
    issuer: z.url().optional(),
    data_dir: z.string().min(1).default("./data"),
    log_level: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
    /** The level of the access lines (one per call): below log_level, they are not written. */
    access_log_level: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
    /** A caller's x-request-id longer than this is replaced by a new one. */
    request_id_max_chars: count(1024).default(128),
    validity: z
      .object({
        application_token: seconds.default(3600),
        user_token: seconds.default(3600),
        refresh_token: seconds.default(86400),
        /** No token, whatever its request asks, lives longer than this. */
        max_token: seconds.default(365 * 24 * 3600),
        /** No system client's token (the callers of this service) lives longer than this, whatever its request asks. */
        system_token: seconds.default(3600),
      })
      .strict()
      .prefault({}),
    jwt: z
      .object({ algorithm: z.enum(["ES256", "RS256"]).default("ES256") })
      .strict()
      .prefault({}),
    endpoints: z
      .object({
        token: z.url().optional(),
        revoke: z.url().optional(),
        introspect: z.url().optional(),
        jwks: z.url().optional(),
      })
      .strict()
      .prefault({}),
    grpc: z
      .object({
        host: host.default("0.0.0.0"),
        port: port.default(50051),
        /** Largest request or response message. */
        max_message_bytes: count(256 * 1024 * 1024).default(4 * 1024 * 1024),
        /** Connections open at once; more are closed as they arrive. */
        max_connections: count(1_000_000).default(4096),
        /** A connection without calls is sent GOAWAY after this (grpc.max_connection_idle_ms). */
        idle_timeout_ms: timeout.default(120_000),
        /** A connection is sent GOAWAY after this (±10%), so clients spread over new replicas; 0: never. */
        max_connection_age_ms: ms(30 * 24 * 3_600_000).default(0),
        /** After the age's GOAWAY, the connection's calls have this long before it is closed. */
        max_connection_age_grace_ms: ms(24 * 3_600_000).default(30_000),
        /** Calls (HTTP/2 streams) of one connection at once; more are refused (REFUSED_STREAM). */
        max_concurrent_streams: count(1_000_000).default(100),
        /** A client's pings closer together than this are strikes (grpc.http2.min_ping_interval_without_data_ms). */
        keepalive_min_ping_interval_ms: ms(24 * 3_600_000).default(300_000),
        /** Whether a client may ping while it has no call open (grpc.keepalive_permit_without_calls). */
        keepalive_permit_without_calls: z.union([z.boolean(), z.stringbool()]).default(false),
        /** Strikes forgiven; the next closes the connection with GOAWAY ENHANCE_YOUR_CALM "too_many_pings" (grpc.http2.max_ping_strikes). */
        keepalive_max_ping_strikes: z.coerce.number().int().min(0).max(1000).default(2),
        /** Answers of a bidi stream (ValidateTokens) written ahead of their writes' completion, corked in bursts; 0 or 1: off. */
        stream_write_ahead: z.coerce.number().int().min(0).max(65_536).default(DEFAULT_STREAM_WRITE_AHEAD),
      })
      .strict()
      .prefault({}),
    http: z
      .object({
        host: host.default("0.0.0.0"),
        port: port.default(8080),
        /** Largest Connect / gRPC-Web request or response message. */
        max_message_bytes: count(256 * 1024 * 1024).default(4 * 1024 * 1024),
        /** Largest OAuth2 form or Store REST body. */
        max_body_bytes: count(16 * 1024 * 1024).default(64 * 1024),
        /** Connections open at once (HTTP/1.1 and HTTP/2); more are closed as they arrive. */
        max_connections: count(1_000_000).default(4096),
        /**
         * A request's headers must have arrived within this from its first byte (HTTP/1.1; a
         * slowloris client is cut); also a new connection's first bytes and its TLS handshake.
         */
        headers_timeout_ms: timeout.default(15_000),
        /** A whole HTTP/1.1 request (headers and body) must have arrived within this. */
        request_timeout_ms: timeout.default(60_000),
        /** An HTTP/1.1 connection with no request in progress is closed after this. */
        keep_alive_timeout_ms: timeout.default(5_000),
        /**
         * An HTTP/2 connection with no stream open is closed after this (GOAWAY); an HTTP/1.1
         * connection that sends or receives nothing for this long is closed too.
         */
        idle_timeout_ms: timeout.default(120_000),
        /** HTTP/2 streams one connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS); more are refused. */
        max_concurrent_streams: count(1_000_000).default(100),
        /** Memory one HTTP/2 connection may hold in megabytes (Node's maxSessionMemory); past it new streams are refused. */
        max_session_memory_mb: count(4096).default(10),
      })
      .strict()
      .refine((h) => h.headers_timeout_ms <= h.request_timeout_ms, { message: "headers_timeout_ms cannot exceed request_timeout_ms" })
      .prefault({}),
    database: z
      .object({
        /** sqlite:PATH, postgres://..., mysql://...; a SQLite file in data_dir when empty. */
        url: z.string().optional(),
        pool_max: z.coerce.number().int().min(1).max(200).default(10),
        /**
         * Longest one statement may take, then it fails UNAVAILABLE and its connection is destroyed
         * (also the server's own bound: PostgreSQL statement_timeout, MariaDB max_statement_time,
         * MySQL max_execution_time for reads; SQLite's busy timeout).
         */
        statement_timeout_ms: z.coerce.number().int().min(50).max(600_000).default(3000),
        /** Longest a call waits for a connection of the pool (opening one included). */
        acquire_timeout_ms: z.coerce.number().int().min(50).max(600_000).default(2000),
        /** Longest opening one connection may take. */
        connect_timeout_ms: z.coerce.number().int().min(50).max(600_000).default(2000),
        /** An unused connection of the pool is closed after this. */
        idle_timeout_ms: z.coerce.number().int().min(1000).max(3_600_000).default(30_000),
        /** Readiness: how often a cheap query checks that the database answers (and at once after a failed call). */
        health_check_interval_ms: z.coerce.number().int().min(50).max(600_000).default(2000),
      })
      .strict()
      .prefault({}),
    tls: z
      .object({
        cert_file: z.string().optional(),
        key_file: z.string().optional(),
        /** CA of gateways' client certificates: required on the gRPC port, optional on HTTP. */
        client_ca_file: z.string().optional(),
        /** Scopes a verified client certificate grants (its subject CN names the caller). */
        client_certificate_scopes: z.array(z.enum(["apim:subscribe", "km:gateway", "km:admin"])).default(["km:gateway"]),
      })
      .strict()
      .refine((t) => Boolean(t.cert_file) === Boolean(t.key_file), {
        message: "cert_file and key_file must be given together",
      })
      .refine((t) => !t.client_ca_file || Boolean(t.cert_file), {
        message: "client_ca_file needs cert_file and key_file",
      })
      .prefault({}),
    housekeeping: z
      .object({
        /** Seconds between purges of ended tokens; 0 turns the purge off. */
        purge_interval_seconds: z.coerce
          .number()
          .int()
          .min(0)
          .max(7 * 24 * 3600)
          .default(600),
        /** How long expired and revoked tokens are kept before the purge deletes them. */
        retain_seconds: z.coerce
          .number()
          .int()
          .min(0)
          .max(365 * 24 * 3600)
          .default(86400),
      })
      .strict()
      .prefault({}),
    cluster: z
      .object({
        /**
         * MySQL/MariaDB: milliseconds between each replica's reads of the other replicas' changes
         * (PostgreSQL is told at once by LISTEN/NOTIFY; SQLite serves one process).
         */
        poll_interval_ms: z.coerce.number().int().min(50).max(60_000).default(500),
        /**
         * Seconds the change log keeps its entries: replicas and gateway streams behind by more
         * lose them (caches flush; a stream resumes with a new snapshot).
         */
        change_log_retain_seconds: z.coerce
          .number()
          .int()
          .min(60)
          .max(30 * 24 * 3600)
          .default(86400),
      })
      .strict()
      .prefault({}),
    authentication: z
      .object({
        /** Proxies (addresses or CIDR ranges) whose forwarded-for header names the caller. */
        trusted_proxies: list(addressOrRange).default([]),
        forwarded_for_header: z
          .string()
          .regex(/^[A-Za-z0-9-]+$/)
          .transform((h) => h.toLowerCase())
          .default("x-forwarded-for"),
        /** Wrong secrets in a row for one client id (or username) from one address before that address is paused for it. */
        failures_before_pause: count(1000).default(5),
        /** Failures one address may have in hand, over all client ids, before it is paused for all. */
        source_failures_before_pause: count(100_000).default(100),
        /** One failure of an address is forgiven every this many milliseconds. */
        source_forgive_ms: ms(3_600_000).default(1000),
        first_pause_ms: ms(3_600_000).default(1000),
        longest_pause_ms: ms(24 * 3_600_000).default(60_000),
        /** Failures of one client id from all addresses after which its wrong-secret answers come late. */
        slow_down_after: count(1_000_000).default(20),
        longest_slowdown_ms: ms(60_000).default(1000),
        /** Addresses, client ids and pairs of them remembered (each); the least recently failed are forgotten. */
        tracked_entries: count(10_000_000).default(100_000),
      })
      .strict()
      .prefault({}),
    validation: z
      .object({
        /** Requests of one ValidateTokens stream worked on at once; past it the stream is not read. */
        stream_max_in_flight: count(100_000).default(256),
        /**
         * Bytes of the "not found" answers kept (unknown tokens, APIs, applications,
         * subscriptions; each for 30 s); past it the least recently used go first.
         */
        negative_cache_bytes: z.coerce
          .number()
          .int()
          .min(64 * 1024)
          .max(4096 * 1024 * 1024)
          .default(16 * 1024 * 1024),
      })
      .strict()
      .prefault({}),
    trusted_issuers: z
      .object({
        /** One fetch of a trusted issuer's JWKS; past it the request is refused temporarily_unavailable. */
        jwks_timeout_ms: timeout.default(3000),
        /** The largest JWKS answer read; a larger one is a fetch failure. */
        jwks_max_bytes: z.coerce
          .number()
          .int()
          .min(1024)
          .max(64 * 1024 * 1024)
          .default(1024 * 1024),
        /** A fetched JWKS is used this long before it is fetched again. */
        jwks_cache_max_age_ms: z.coerce
          .number()
          .int()
          .min(1000)
          .max(7 * 24 * 3_600_000)
          .default(600_000),
        /** After a fetch, a JWT naming an unknown kid waits this long before the JWKS is fetched again. */
        jwks_cooldown_ms: ms(3_600_000).default(30_000),
        /** Issuers whose fetched keys are kept in memory at once; the least recently used go first. Read at start. */
        jwks_cached_issuers: count(1_000_000).default(1000),
        /** Leeway for exp, nbf and iat of an issuer's JWTs. */
        clock_skew_seconds: z.coerce.number().int().min(0).max(600).default(60),
      })
      .strict()
      .prefault({}),
    gateway_sync: z
      .object({
        /** Watch streams one replica serves at once; past it a new one is refused RESOURCE_EXHAUSTED. */
        max_watchers: count(1_000_000).default(10_000),
        /** A heartbeat goes out on a Watch stream that sent nothing for this long. */
        heartbeat_interval_ms: z.coerce.number().int().min(50).max(3_600_000).default(10_000),
        /** Events waiting for one watcher to read them; past either bound it is cut off RESOURCE_EXHAUSTED. */
        max_buffered_messages: count(10_000_000).default(10_000),
        max_buffered_bytes: count(1024 * 1024 * 1024).default(16 * 1024 * 1024),
        /** Entities per snapshot chunk, and its bytes (a single bigger entity goes alone). */
        snapshot_chunk_entities: count(1_000_000).default(10_000),
        snapshot_chunk_bytes: count(256 * 1024 * 1024).default(1024 * 1024),
        /** Rows per query while a snapshot is read. */
        snapshot_page_rows: count(100_000).default(1000),
      })
      .strict()
      .prefault({}),
    paging: z
      .object({
        /** Items a List call returns when it asks for no page_size. */
        default_page_size: z.coerce.number().int().min(1).max(10_000).default(100),
        /** The most a List call returns, whatever page_size it asks for. */
        max_page_size: z.coerce.number().int().min(1).max(10_000).default(1000),
      })
      .strict()
      .refine((p) => p.default_page_size <= p.max_page_size, { message: "default_page_size cannot exceed max_page_size" })
      .prefault({}),
    authorization: z
      .object({
        /** Seconds an authorization code may wait for its exchange at the token endpoint (at most 60). */
        code_seconds: count(60).default(60),
        /** Whether every client must use PKCE (S256); public clients always must. */
        require_pkce: z.union([z.boolean(), z.stringbool()]).default(true),
        /** Seconds a login on the authorization pages lasts. */
        session_seconds: count(30 * 24 * 3600).default(3600),
        /** Longest parameter of an authorization request (state, nonce, scope, redirect_uri). */
        max_parameter_chars: count(8192).default(2048),
      })
      .strict()
      .prefault({}),
    /** Consumer secrets added to a client beside the one it was created with (CreateConsumerSecret). */
    secrets: z
      .object({
        /** Unexpired added secrets one client may hold; one more is FAILED_PRECONDITION. */
        max_per_client: count(1000).default(10),
        /** The longest validity a new secret may ask for. */
        max_validity_seconds: seconds.default(10 * 365 * 24 * 3600),
      })
      .strict()
      .prefault({}),
    /** Scopes (ScopeService): the bounds of their text and of the lists its calls take. */
    scopes: z
      .object({
        /** A scope's display_name, in characters. */
        max_display_name_chars: count(65_536).default(255),
        /** A scope's description, in characters. */
        max_description_chars: count(65_536).default(1024),
        /** Names of one ValidateScopes, API ids of one GetScopesForAPIs. */
        max_names_per_call: count(10_000).default(100),
      })
      .strict()
      .prefault({}),
    metrics: z
      .object({
        /** Prometheus metrics: counted, and served at GET /metrics. */
        enabled: z.union([z.boolean(), z.stringbool()]).default(true),
        /** A listener of their own for /metrics (then not on the HTTP port); absent: the HTTP port serves them. */
        port: port.optional(),
        /** The metrics listener's address, when it has a port of its own. */
        host: host.default("127.0.0.1"),
      })
      .strict()
      .prefault({}),
    tracing: z
      .object({
        /** none: no spans; otlp: spans sent to otlp_endpoint (OTLP/HTTP); global: to the provider the process registered. */
        exporter: z.enum(["none", "otlp", "global"]).default("none"),
        otlp_endpoint: z.url().default("http://localhost:4318/v1/traces"),
        service_name: z.string().min(1).max(100).default("keymanager"),
        /** A longer SQL statement is cut in a database span's db.statement. */
        max_statement_chars: count(100_000).default(1000),
      })
      .strict()
      .prefault({}),
    encryption: z
      .object({
        /** Base64 of 32 bytes. Generated into data_dir on first start when empty. */
        key: z.string().optional(),
      })
      .strict()
      .prefault({}),
    /** Gateways that ask by request (Envoy ext_authz, nginx / Caddy / Traefik forward auth). */
    gateway: z
      .object({
        /** The header carrying the API caller's token (`Bearer <token>`; a bare token in another header). */
        token_header: headerName.default("authorization"),
        /** A header naming the API version when the path does not; "" reads none. */
        version_header: z.union([headerName, z.literal("")]).default(""),
        /** Whether the caller's token header is removed before the upstream (Envoy; nginx/Caddy by their own config). */
        remove_token_header: z.boolean().default(false),
        /** The header a gateway's status code travels in, allowed or refused. */
        code_header: headerName.default("x-km-status-code"),
        /** Forward auth: the header carrying the calling gateway's own `Bearer <km:gateway token or secret>`. */
        caller_header: headerName.default("x-km-authorization"),
        /** Forward auth: SHA-256 (hex) of shared secrets a gateway may send in caller_header instead of a token. */
        caller_secrets_sha256: list(z.string().regex(/^[0-9a-fA-F]{64}$/, { message: "must be a SHA-256 in hex (64 digits)" })).default([]),
        /** Headers an allowed request goes on with; "" leaves one out. */
        upstream_headers: z
          .object({
            consumer_key: upstreamHeader.default("x-consumer-key"),
            application_id: upstreamHeader.default("x-application-id"),
            application_name: upstreamHeader.default("x-application-name"),
            subscription_tier: upstreamHeader.default("x-subscription-tier"),
            key_type: upstreamHeader.default("x-key-type"),
            end_user: upstreamHeader.default("x-end-user"),
          })
          .strict()
          .prefault({}),
        /** How long the list of APIs (context and version) a request path is located in is trusted without a change heard. */
        api_list_ttl_ms: ms(3_600_000).default(300_000),
      })
      .strict()
      .refine((g) => g.caller_header !== g.token_header, { message: "caller_header (the gateway's own token) cannot be token_header (the API caller's)" })
      .prefault({}),
    /** The resident key manager's switches, as WSO2 shows them per key manager. */
    features: keyManagerFeaturesSection,
    /** External OAuth2 servers acting as key managers beside the resident one (`[[key_manager.external]]`). */
    external: externalKeyManagersSection,
  })
  .strict()
  .refine((s) => !s.external.some((km) => km.name === s.name), { message: "an external key manager cannot take the resident key manager's name" });

// Other top-level tables may belong to other tools sharing the file; they are ignored.
export const deploymentFile = z.object({ key_manager: keyManagerSection.prefault({}) });

export type KeyManagerSection = z.infer<typeof keyManagerSection>;
