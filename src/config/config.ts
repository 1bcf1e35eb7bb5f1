import type { TokenType } from "../domain/model/index.js";
import type { ThrottleLimits } from "../oauth/authentication-throttle.js";
import { type ExternalKeyManagerConfig, externalFromSection } from "./external-key-managers.js";
import type { KeyManagerSection } from "./schema.js";
import { type KeyManagerFeatures, featuresFromSection } from "./key-manager-features.js";
import type { TracingConfig } from "../observability/tracing.js";
import type { GrpcConnectionLimits } from "../transport/grpc-server.js";
import type { HttpConnectionLimits } from "../transport/http-port.js";
import type { DatabaseDeadlines } from "../storage/deadlines.js";

/** The effective configuration the rest of the service reads. */
export interface Config {
  name: string;
  type: string;
  tokenType: TokenType;
  jwtAlgorithm: "ES256" | "RS256";
  issuer: string;
  endpoints: { token: string; revoke: string; introspect: string; jwks: string };
  dataDir: string;
  logLevel: string;
  /** The level access lines are written at ("silent": none). */
  accessLogLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
  /** The longest x-request-id of a caller kept. */
  requestIdMaxChars: number;
  validity: {
    applicationTokenSeconds: number;
    userTokenSeconds: number;
    refreshTokenSeconds: number;
    maxTokenSeconds: number;
    /** The longest a system client's token lives. */
    systemTokenSeconds: number;
  };
  grpc: {
    host: string;
    port: number;
    maxMessageBytes: number;
    connections: GrpcConnectionLimits;
    /** Answers of a bidi stream written ahead and corked in bursts (grpc-write-ahead.ts); 0 or 1: off. */
    streamWriteAhead: number;
  };
  http: { host: string; port: number; maxMessageBytes: number; maxBodyBytes: number; connections: HttpConnectionLimits };
  /** Where the data lives, and how long the service waits on it (storage/deadlines.ts). */
  database: { url: string; poolMax: number; deadlines: DatabaseDeadlines; healthCheckIntervalMs: number };
  tls: { certFile: string; keyFile: string; clientCaFile: string | undefined; clientCertificateScopes: string[] } | undefined;
  encryptionKey: string | undefined;
  /** Who a caller is, network-wise, and how failed authentications are slowed down. */
  authentication: { trustedProxies: string[]; forwardedForHeader: string; throttle: ThrottleLimits };
  housekeeping: { intervalSeconds: number; retainSeconds: number };
  /** Other replicas' changes: how often MySQL/MariaDB replicas read them. */
  cluster: { pollIntervalMs: number; changeLogRetainSeconds: number };
  /** The gateways' checks: how many requests of one ValidateTokens stream are worked on at once. */
  validation: { streamMaxInFlight: number; negativeCacheBytes: number };
  /** Outside issuers' JWTs (JWT bearer grant, token exchange): fetching their keys, judging their times. */
  trustedIssuers: TrustedIssuerSettings;
  /** The gateways' Watch streams (GatewaySyncService). */
  gatewaySync: GatewaySyncSettings;
  /** Page sizes of the List RPCs (and GetActiveTokensByConsumerKey). */
  paging: { defaultPageSize: number; maxPageSize: number };
  /** The authorization code grant and its pages (oauth/authorization-service.ts). */
  authorization: AuthorizationSettings;
  /** Consumer secrets added to a client (CreateConsumerSecret): how many, and how long they may live. */
  secrets: { maxPerClient: number; maxValiditySeconds: number };
  /** Scopes (ScopeService): bounds of their text and of the lists its calls take. */
  scopes: ScopeLimits;
  /** Gateways asking by request: Envoy's ext_authz and forward auth (gateway/gateway-check.ts). */
  gateway: GatewaySettings;
  /** The resident key manager's switches (WSO2's key manager configuration). */
  features: KeyManagerFeatures;
  /** External OAuth2 key managers, in the order their token patterns are tried. */
  externalKeyManagers: ExternalKeyManagerConfig[];
  /** Prometheus metrics: whether kept, and where served (the HTTP port when port is undefined). */
  metrics: { enabled: boolean; host: string; port: number | undefined };
  /** OpenTelemetry spans: where they go ("none": none are made). */
  tracing: TracingConfig;
}

export interface AuthorizationSettings {
  codeSeconds: number;
  requirePkce: boolean;
  sessionSeconds: number;
  maxParameterChars: number;
}

export interface ScopeLimits {
  maxDisplayNameChars: number;
  maxDescriptionChars: number;
  /** Names of one ValidateScopes, API ids of one GetScopesForAPIs. */
  maxNamesPerCall: number;
}

export interface TrustedIssuerSettings {
  jwksTimeoutMs: number;
  jwksMaxBytes: number;
  jwksCacheMaxAgeMs: number;
  jwksCooldownMs: number;
  jwksCachedIssuers: number;
  clockSkewSeconds: number;
}

export interface GatewaySyncSettings {
  maxWatchers: number;
  heartbeatIntervalMs: number;
  maxBufferedMessages: number;
  maxBufferedBytes: number;
  snapshotChunkEntities: number;
  snapshotChunkBytes: number;
  snapshotPageRows: number;
}

export interface GatewaySettings {
  tokenHeader: string;
  versionHeader: string;
  removeTokenHeader: boolean;
  codeHeader: string;
  callerHeader: string;
  /** SHA-256 (hex) of the forward-auth gateways' shared secrets. */
  callerSecretsSha256: string[];
  /** Lower-case names; "" leaves the value out. */
  upstreamHeaders: {
    consumerKey: string;
    applicationId: string;
    applicationName: string;
    subscriptionTier: string;
    keyType: string;
    endUser: string;
  };
  apiListTtlMs: number;
}

/** Settings read once at start; a reload that changes them reports "restart required". */
export const RESTART_ONLY_SETTINGS = [
  "grpc",
  "http",
  "database",
  "tls",
  "dataDir",
  "encryptionKey",
  "cluster",
  "authentication",
  "gateway",
  "metrics",
  "tracing",
] as const;

export function fromSection(s: KeyManagerSection): Config {
  const publicHost = s.http.host === "0.0.0.0" || s.http.host === "::" ? "localhost" : s.http.host;
  const issuer = (s.issuer ?? `http://${publicHost}:${s.http.port}`).replace(/\/+$/, "");
  return {
    name: s.name,
    type: s.type,
    tokenType: s.token_type === "jwt" ? "JWT" : "OPAQUE",
    jwtAlgorithm: s.jwt.algorithm,
    issuer,
    endpoints: {
      token: s.endpoints.token ?? `${issuer}/oauth2/token`,
      revoke: s.endpoints.revoke ?? `${issuer}/oauth2/revoke`,
      introspect: s.endpoints.introspect ?? `${issuer}/oauth2/introspect`,
      jwks: s.endpoints.jwks ?? `${issuer}/oauth2/jwks`,
    },
    dataDir: s.data_dir,
    logLevel: s.log_level,
    accessLogLevel: s.access_log_level,
    requestIdMaxChars: s.request_id_max_chars,
    validity: {
      applicationTokenSeconds: s.validity.application_token,
      userTokenSeconds: s.validity.user_token,
      refreshTokenSeconds: s.validity.refresh_token,
      maxTokenSeconds: s.validity.max_token,
      systemTokenSeconds: s.validity.system_token,
    },
    grpc: {
      host: s.grpc.host,
      port: s.grpc.port,
      maxMessageBytes: s.grpc.max_message_bytes,
      connections: {
        maxConnections: s.grpc.max_connections,
        idleTimeoutMs: s.grpc.idle_timeout_ms,
        maxConnectionAgeMs: s.grpc.max_connection_age_ms,
        maxConnectionAgeGraceMs: s.grpc.max_connection_age_grace_ms,
        maxConcurrentStreams: s.grpc.max_concurrent_streams,
        keepaliveMinPingIntervalMs: s.grpc.keepalive_min_ping_interval_ms,
        keepalivePermitWithoutCalls: s.grpc.keepalive_permit_without_calls,
        keepaliveMaxPingStrikes: s.grpc.keepalive_max_ping_strikes,
      },
      streamWriteAhead: s.grpc.stream_write_ahead,
    },
    http: {
      host: s.http.host,
      port: s.http.port,
      maxMessageBytes: s.http.max_message_bytes,
      maxBodyBytes: s.http.max_body_bytes,
      connections: {
        maxConnections: s.http.max_connections,
        headersTimeoutMs: s.http.headers_timeout_ms,
        requestTimeoutMs: s.http.request_timeout_ms,
        keepAliveTimeoutMs: s.http.keep_alive_timeout_ms,
        idleTimeoutMs: s.http.idle_timeout_ms,
        maxConcurrentStreams: s.http.max_concurrent_streams,
        maxSessionMemoryMb: s.http.max_session_memory_mb,
      },
    },
    database: {
      url: s.database.url ?? `sqlite:${s.data_dir}/keymanager.db`,
      poolMax: s.database.pool_max,
      deadlines: {
        statementMs: s.database.statement_timeout_ms,
        acquireMs: s.database.acquire_timeout_ms,
        connectMs: s.database.connect_timeout_ms,
        idleMs: s.database.idle_timeout_ms,
      },
      healthCheckIntervalMs: s.database.health_check_interval_ms,
    },
    tls:
      s.tls.cert_file && s.tls.key_file
        ? { certFile: s.tls.cert_file, keyFile: s.tls.key_file, clientCaFile: s.tls.client_ca_file, clientCertificateScopes: s.tls.client_certificate_scopes }
        : undefined,
    encryptionKey: s.encryption.key || undefined,
    authentication: {
      trustedProxies: s.authentication.trusted_proxies,
      forwardedForHeader: s.authentication.forwarded_for_header,
      throttle: {
        freeFailures: s.authentication.failures_before_pause,
        sourceFreeFailures: s.authentication.source_failures_before_pause,
        sourceForgiveMs: s.authentication.source_forgive_ms,
        firstPauseMs: s.authentication.first_pause_ms,
        longestPauseMs: s.authentication.longest_pause_ms,
        subjectSlowdownAfter: s.authentication.slow_down_after,
        longestSlowdownMs: s.authentication.longest_slowdown_ms,
        maxTracked: s.authentication.tracked_entries,
      },
    },
    housekeeping: { intervalSeconds: s.housekeeping.purge_interval_seconds, retainSeconds: s.housekeeping.retain_seconds },
    cluster: { pollIntervalMs: s.cluster.poll_interval_ms, changeLogRetainSeconds: s.cluster.change_log_retain_seconds },
    validation: { streamMaxInFlight: s.validation.stream_max_in_flight, negativeCacheBytes: s.validation.negative_cache_bytes },
    trustedIssuers: {
      jwksTimeoutMs: s.trusted_issuers.jwks_timeout_ms,
      jwksMaxBytes: s.trusted_issuers.jwks_max_bytes,
      jwksCacheMaxAgeMs: s.trusted_issuers.jwks_cache_max_age_ms,
      jwksCooldownMs: s.trusted_issuers.jwks_cooldown_ms,
      jwksCachedIssuers: s.trusted_issuers.jwks_cached_issuers,
      clockSkewSeconds: s.trusted_issuers.clock_skew_seconds,
    },
    gatewaySync: {
      maxWatchers: s.gateway_sync.max_watchers,
      heartbeatIntervalMs: s.gateway_sync.heartbeat_interval_ms,
      maxBufferedMessages: s.gateway_sync.max_buffered_messages,
      maxBufferedBytes: s.gateway_sync.max_buffered_bytes,
      snapshotChunkEntities: s.gateway_sync.snapshot_chunk_entities,
      snapshotChunkBytes: s.gateway_sync.snapshot_chunk_bytes,
      snapshotPageRows: s.gateway_sync.snapshot_page_rows,
    },
    paging: { defaultPageSize: s.paging.default_page_size, maxPageSize: s.paging.max_page_size },
    authorization: {
      codeSeconds: s.authorization.code_seconds,
      requirePkce: s.authorization.require_pkce,
      sessionSeconds: s.authorization.session_seconds,
      maxParameterChars: s.authorization.max_parameter_chars,
    },
    secrets: { maxPerClient: s.secrets.max_per_client, maxValiditySeconds: s.secrets.max_validity_seconds },
    scopes: {
      maxDisplayNameChars: s.scopes.max_display_name_chars,
      maxDescriptionChars: s.scopes.max_description_chars,
      maxNamesPerCall: s.scopes.max_names_per_call,
    },
    gateway: {
      tokenHeader: s.gateway.token_header,
      versionHeader: s.gateway.version_header,
      removeTokenHeader: s.gateway.remove_token_header,
      codeHeader: s.gateway.code_header,
      callerHeader: s.gateway.caller_header,
      callerSecretsSha256: s.gateway.caller_secrets_sha256,
      upstreamHeaders: {
        consumerKey: s.gateway.upstream_headers.consumer_key,
        applicationId: s.gateway.upstream_headers.application_id,
        applicationName: s.gateway.upstream_headers.application_name,
        subscriptionTier: s.gateway.upstream_headers.subscription_tier,
        keyType: s.gateway.upstream_headers.key_type,
        endUser: s.gateway.upstream_headers.end_user,
      },
      apiListTtlMs: s.gateway.api_list_ttl_ms,
    },
    features: featuresFromSection(s.features, s.features.enable_self_validation_jwt ?? true),
    externalKeyManagers: s.external.map(externalFromSection),
    metrics: { enabled: s.metrics.enabled, host: s.metrics.host, port: s.metrics.port },
    tracing: {
      exporter: s.tracing.exporter,
      otlpEndpoint: s.tracing.otlp_endpoint,
      serviceName: s.tracing.service_name,
      maxStatementChars: s.tracing.max_statement_chars,
    },
  };
}
