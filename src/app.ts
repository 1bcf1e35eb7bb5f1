import { readFileSync } from "node:fs";
import { isDeepStrictEqual } from "node:util";
import * as grpc from "@grpc/grpc-js";
import type { Knex } from "knex";
import { pino, type Logger } from "pino";
import { KeyManagerService } from "../gen/keymanager/v1/key_manager_service_pb.js";
import { SigningKeyService } from "../gen/keymanager/v1/signing_key_service_pb.js";
import { SubscriptionService } from "../gen/keymanager/v1/subscription_service_pb.js";
import { TokenValidationService } from "../gen/keymanager/v1/token_validation_service_pb.js";
import { UserService } from "../gen/keymanager/v1/user_service_pb.js";
import { TrustedIssuerService } from "../gen/keymanager/v1/trusted_issuer_service_pb.js";
import { IssuerJwts } from "./oauth/issuer-jwts.js";
import { IssuerKeys } from "./oauth/issuer-keys.js";
import { TrustedIssuers } from "./oauth/trusted-issuers.js";
import { TrustedIssuerServiceImpl } from "./services/trusted-issuer-service.js";
import { ScopeService } from "../gen/keymanager/v1/scope_service_pb.js";
import { ScopeManager } from "./oauth/scope-manager.js";
import { ScopeServiceImpl } from "./services/scope-service.js";
import { GatewaySyncService } from "../gen/keymanager/v1/gateway_sync_service_pb.js";
import { GatewaySyncServiceImpl } from "./services/gateway-sync-service.js";
import { GatewaySync } from "./sync/gateway-sync.js";
import { SnapshotReader } from "./sync/snapshot-reader.js";
import type { GatewayExternalKeyManager } from "./sync/entities.js";
import { gatewayExternalKeyManagers } from "./sync/external-key-managers.js";
import { Authorization } from "../gen/envoy/service/auth/v3/external_auth_pb.js";
import { ApiDirectory } from "./gateway/api-directory.js";
import { GatewaySecrets } from "./auth/gateway-secrets.js";
import { GatewayCheck } from "./gateway/gateway-check.js";
import { ExtAuthzServiceImpl } from "./services/ext-authz-service.js";
import { forwardAuthRoute } from "./transport/forward-auth-route.js";
import { SystemClientService } from "../gen/keymanager/v1/system_client_service_pb.js";
import { CallAuthorizer } from "./auth/call-authorizer.js";
import { CallerAuthenticator } from "./auth/caller-authenticator.js";
import { type SystemClientInput, SystemClients } from "./auth/system-clients.js";
import { type ChangeFeed, startChangeFeed } from "./cluster/change-feed.js";
import { ChangeEvents } from "./domain/change-events.js";
import { SystemClientServiceImpl } from "./services/system-client-service.js";
import { AuditLog } from "./transport/audit-log.js";
import { SigningKeys } from "./oauth/signing-keys.js";
import { TokenService } from "./oauth/token-service.js";
import { UserManager } from "./oauth/user-manager.js";
import { SigningKeyServiceImpl } from "./services/signing-key-service.js";
import { SubscriptionServiceImpl } from "./services/subscription-service.js";
import { TokenValidationServiceImpl } from "./services/token-validation-service.js";
import { UserServiceImpl } from "./services/user-service.js";
import { SubscriptionManager } from "./subscriptions/subscription-manager.js";
import { oauthRoutes } from "./transport/oauth-routes.js";
import { authorizeRoutes } from "./transport/authorize-routes.js";
import { AuthorizationService } from "./oauth/authorization-service.js";
import { UserInfo } from "./oauth/user-info.js";
import { openApiRoutes } from "./transport/openapi-routes.js";
import { storeRestRoutes } from "./transport/store-rest-routes.js";
import { TokenValidator } from "./validation/token-validator.js";
import { DecisionCache } from "./validation/decision-cache.js";
import type { ValidationResult } from "./validation/token-validator.js";
import { DEFAULT_CACHE_LIMITS, ValidationCache } from "./validation/validation-cache.js";
import { ConfigStore } from "./config/config-store.js";
import type { ConfigSource } from "./config/load.js";
import { type Clock, systemClock } from "./domain/clock.js";
import { buildKeyManagers, type KeyManagers } from "./keymanager/key-managers.js";
import { ResidentKeyManager } from "./keymanager/resident-key-manager.js";
import { KeyManagerServiceImpl } from "./services/key-manager-service.js";
import { PageTokens, Paging } from "./services/page-tokens.js";
import { createKnex, dialectOf, prepareSchema } from "./storage/database.js";
import { DatabaseHealth } from "./storage/database-health.js";
import { loadOrCreateEncryptionKey, SecretBox } from "./storage/secret-box.js";
import { Store } from "./storage/store.js";
import { Housekeeping } from "./storage/housekeeping.js";
import { changeLogPurge, tokenPurges } from "./storage/purges.js";
import { TokenWriter } from "./storage/token-writer.js";
import { GrpcServer, type ServiceRegistration } from "./transport/grpc-server.js";
import type { WriteAheadStats } from "./transport/grpc-write-ahead.js";
import type { GrpcHandlerOptions } from "./transport/grpc-service.js";
import { ClientAddresses } from "./transport/client-address.js";
import { closeHttp, createHttpServer, listen } from "./transport/http-server.js";
import { Metrics } from "./observability/metrics.js";
import { AccessLog } from "./observability/access-log.js";
import { Tracing } from "./observability/tracing.js";
import { createMetricsServer } from "./observability/metrics-server.js";
import type * as http from "node:http";
import type { HttpPort } from "./transport/http-port.js";
import { toConnectError } from "./transport/error-mapping.js";

const SHUTDOWN_GRACE_MS = 10_000;

export interface BuildOptions {
  config: ConfigSource;
  logger?: Logger;
  clock?: Clock;
  /**
   * Adds services to the gRPC server before it binds (the benchmark's no-op baseline), with the
   * handler options (authentication, audit) the service's own RPCs use.
   */
  configureGrpc?: (server: grpc.Server, handlerOptions: GrpcHandlerOptions) => void;
}

export interface Listening {
  grpcPort: number;
  httpPort: number;
  /** The metrics listener's port, when metrics have one of their own. */
  metricsPort?: number;
}

/**
 * The whole service, wired but not listening: tests build it, listen on port 0 and close it.
 */
export class App {
  readonly configStore: ConfigStore;
  readonly logger: Logger;
  private db: Knex | undefined;
  private grpcServer: GrpcServer | undefined;
  private httpServer: HttpPort | undefined;
  private metricsServer: http.Server | undefined;
  private tracing: Tracing | undefined;
  private ready = false;
  /** Whether the database answers (readiness: grpc.health.v1 and /healthz). */
  private databaseHealth: DatabaseHealth | undefined;
  /** Prometheus metrics (a registry of this app's own); off when [metrics] enabled = false. */
  readonly metrics: Metrics;
  private cache: ValidationCache | undefined;
  private decisions: DecisionCache<ValidationResult> | undefined;
  private feed: ChangeFeed | undefined;
  private events: ChangeEvents | undefined;
  private keyManagers: KeyManagers | undefined;
  private apiDirectory: ApiDirectory | undefined;
  private unregisterWatchers: (() => void) | undefined;
  private watchStreams: GatewaySync | undefined;
  /** Available once started: the bootstrap command and tests create callers with it. */
  systemClients: SystemClients | undefined;
  tokens: TokenService | undefined;
  housekeeping: Housekeeping | undefined;

  /** The changes published to this replica's caches; once started. */
  get changeEvents(): ChangeEvents | undefined {
    return this.events;
  }

  /** The gRPC port's bidi calls written ahead (corked) or plainly (grpc-write-ahead.ts); once started. */
  get grpcWriteAhead(): WriteAheadStats | undefined {
    return this.grpcServer?.writeAhead;
  }

  constructor(private readonly options: BuildOptions) {
    this.configStore = new ConfigStore(options.config);
    const config = this.configStore.current;
    this.logger =
      options.logger ??
      pino({
        level: config.logLevel,
        redact: { paths: ["*.consumerSecret", "*.consumer_secret", "*.password", "*.token", "*.accessToken"], censor: "***" },
      });
    this.metrics = new Metrics(config.metrics.enabled);
    this.configStore.onChange((c) => {
      this.logger.level = c.logLevel;
    });
  }

  async start(): Promise<Listening> {
    const config = this.configStore.current;
    const clock = this.options.clock ?? systemClock;
    const databaseHealth = new DatabaseHealth(
      () => (this.db ? this.db.raw("select 1") : Promise.reject(new Error("the database is closed"))),
      config.database.healthCheckIntervalMs,
      this.logger,
    );
    this.databaseHealth = databaseHealth;
    this.db = createKnex(config.database, this.logger, databaseHealth);
    const metrics = this.metrics;
    metrics.database(this.db);
    const tracing = new Tracing(config.tracing);
    this.tracing = tracing;
    tracing.database(this.db, dialectOf(config.database.url));
    await prepareSchema(this.db, config.database, this.logger);
    const { key } = loadOrCreateEncryptionKey(config.encryptionKey, config.dataDir);
    const currentConfig = () => this.configStore.current;
    const events = new ChangeEvents();
    this.events = events;
    // Every change goes into the change log with its commit, and from there to the caches.
    const store = new Store(this.db, new SecretBox(key), events, undefined, {
      tokenHorizonMs: () => currentConfig().validity.maxTokenSeconds * 1000,
    });
    // Other replicas on this database hear of this one's changes, and this one of theirs.
    this.feed = await startChangeFeed({
      db: this.db,
      url: config.database.url,
      events,
      pollIntervalMs: config.cluster.pollIntervalMs,
      logger: this.logger,
      metrics,
    });
    const signingKeys = new SigningKeys(
      store,
      clock,
      () => ({ algorithm: currentConfig().jwtAlgorithm, maxTokenSeconds: currentConfig().validity.maxTokenSeconds }),
      events,
      this.logger,
    );
    await signingKeys.load();
    this.announceSelfValidationChanges(store);
    this.housekeeping = new Housekeeping(
      [
        ...tokenPurges(store, clock, () => currentConfig().housekeeping.retainSeconds),
        changeLogPurge(store.changeLog, () => config.cluster.changeLogRetainSeconds),
      ],
      () => currentConfig().housekeeping.intervalSeconds,
      this.logger,
    );
    const issuerJwts = new IssuerJwts(store, new IssuerKeys(() => currentConfig().trustedIssuers), currentConfig, clock);
    const tokens = new TokenService(
      store,
      signingKeys,
      currentConfig,
      clock,
      events,
      new TokenWriter(this.db),
      config.authentication.throttle,
      metrics,
      issuerJwts,
    );
    const authorization = new AuthorizationService(store, currentConfig, clock, tokens.throttle);
    const addresses = new ClientAddresses(config.authentication.trustedProxies, config.authentication.forwardedForHeader);
    const resident = new ResidentKeyManager(store, currentConfig, clock, tokens);
    this.keyManagers = buildKeyManagers({ resident, config: currentConfig, store, clock, events, logger: this.logger });
    const { keyManager, registry } = this.keyManagers;
    await this.announceExternalKeyManagerChanges(this.keyManagers, store, events);
    this.cache = new ValidationCache(events, { ...DEFAULT_CACHE_LIMITS, negativeBytes: config.validation.negativeCacheBytes });
    this.decisions = new DecisionCache<ValidationResult>(events, DEFAULT_CACHE_LIMITS.maxEntries, DEFAULT_CACHE_LIMITS.maxBytes);
    for (const stats of [...this.cache.stats, this.decisions.stats, tokens.clientStats]) metrics.cache(stats);
    const validator = new TokenValidator(store, signingKeys, this.cache, this.decisions, currentConfig, clock, this.logger, registry);

    this.apiDirectory = new ApiDirectory(store.apis, clock, () => currentConfig().gateway.apiListTtlMs, this.logger, events);
    const gateway = new GatewayCheck(this.apiDirectory, validator, config.gateway);

    this.systemClients = new SystemClients(store, clock, () => currentConfig().name);
    const authenticator = new CallerAuthenticator({ token: (t) => tokens.lookup(t), client: (k) => store.clients.find(k) }, clock, events);
    metrics.cache(authenticator.stats);
    const authorizer = new CallAuthorizer(authenticator, () => currentConfig().tls?.clientCertificateScopes ?? []);
    const audit = new AuditLog(this.logger);
    const access = new AccessLog(
      this.logger,
      () => currentConfig().accessLogLevel,
      () => currentConfig().requestIdMaxChars,
    );
    this.tokens = tokens;
    // Page tokens are signed with a key derived from the encryption key, which replicas share.
    const paging = new Paging(PageTokens.fromEncryptionKey(key), () => currentConfig().paging);
    const gatewaySync = this.gatewaySync(store, clock);
    const services: ServiceRegistration[] = [
      { service: KeyManagerService, impl: new KeyManagerServiceImpl(keyManager, this.configStore, paging, tokens, registry, resident) as never },
      {
        service: TokenValidationService,
        impl: new TokenValidationServiceImpl(
          validator,
          {
            maxInFlight: () => currentConfig().validation.streamMaxInFlight,
            describeError: (err) => toConnectError(err, this.logger, "/keymanager.v1.TokenValidationService/ValidateTokens"),
          },
          metrics,
        ) as never,
      },
      { service: Authorization, impl: new ExtAuthzServiceImpl(gateway) as never },
      { service: SubscriptionService, impl: new SubscriptionServiceImpl(new SubscriptionManager(store, clock), paging) as never },
      { service: UserService, impl: new UserServiceImpl(new UserManager(store, clock), paging, authorization) as never },
      { service: SigningKeyService, impl: new SigningKeyServiceImpl(signingKeys, paging) as never },
      { service: SystemClientService, impl: new SystemClientServiceImpl(this.systemClients, paging) as never },
      { service: GatewaySyncService, impl: gatewaySync as never },
      { service: TrustedIssuerService, impl: new TrustedIssuerServiceImpl(new TrustedIssuers(store, clock), paging) as never },
      { service: ScopeService, impl: new ScopeServiceImpl(new ScopeManager(store, clock, () => currentConfig().scopes), paging) as never },
    ];
    const tls = config.tls
      ? {
          cert: readFileSync(config.tls.certFile),
          key: readFileSync(config.tls.keyFile),
          clientCa: config.tls.clientCaFile ? readFileSync(config.tls.clientCaFile) : undefined,
        }
      : undefined;
    this.grpcServer = new GrpcServer({
      logger: this.logger,
      services,
      // With a client CA, gateways' port requires a client certificate signed by it (mTLS).
      credentials: tls
        ? grpc.ServerCredentials.createSsl(tls.clientCa ?? null, [{ cert_chain: tls.cert, private_key: tls.key }], tls.clientCa !== undefined)
        : grpc.ServerCredentials.createInsecure(),
      maxMessageBytes: config.grpc.maxMessageBytes,
      connections: config.grpc.connections,
      streamWriteAhead: config.grpc.streamWriteAhead,
      authorizer,
      clientCertificates: tls?.clientCa !== undefined,
      audit,
      addresses,
      metrics,
      access,
      tracing,
    });
    this.options.configureGrpc?.(this.grpcServer.server, {
      logger: this.logger,
      authorizer,
      clientCertificates: tls?.clientCa !== undefined,
      audit,
      addresses,
      metrics,
      access,
      tracing,
    });
    this.httpServer = createHttpServer({
      logger: this.logger,
      services,
      routes: [
        oauthRoutes({
          tokens,
          keys: signingKeys,
          config: currentConfig,
          addresses,
          maxFormBytes: config.http.maxBodyBytes,
          audit,
          userInfo: new UserInfo(tokens, store.users),
        }),
        authorizeRoutes({ authorization, config: currentConfig, addresses, maxFormBytes: config.http.maxBodyBytes, audit }),
        storeRestRoutes({ keyManager, authenticator, logger: this.logger, audit, maxBodyBytes: config.http.maxBodyBytes }),
        forwardAuthRoute({
          gateway,
          authorizer,
          secrets: new GatewaySecrets(config.gateway.callerSecretsSha256),
          settings: config.gateway,
          clientCertificates: tls?.clientCa !== undefined,
          logger: this.logger,
        }),
        openApiRoutes(),
      ],
      tls,
      maxMessageBytes: config.http.maxMessageBytes,
      connections: config.http.connections,
      isReady: () => this.ready && databaseHealth.reachable,
      authorizer,
      audit,
      addresses,
      metrics,
      serveMetrics: metrics.enabled && config.metrics.port === undefined,
      access,
      tracing,
    });
    const grpcPort = await this.grpcServer.listen(config.grpc.host, config.grpc.port);
    const httpPort = await this.httpServer.listen(config.http.host, config.http.port);
    if (config.http.port === 0) this.configStore.pinHttpPort(httpPort);
    let metricsPort: number | undefined;
    if (metrics.enabled && config.metrics.port !== undefined) {
      this.metricsServer = createMetricsServer(metrics);
      metricsPort = await listen(this.metricsServer, config.metrics.host, config.metrics.port);
    }
    this.ready = true;
    databaseHealth.onChange((reachable) => this.grpcServer?.setServing(this.ready && reachable));
    databaseHealth.start();
    this.housekeeping.start();
    this.logger.info({ grpcPort, httpPort, metricsPort, database: config.database.url.split(":")[0] }, "key manager listening");
    return { grpcPort, httpPort, ...(metricsPort === undefined ? {} : { metricsPort }) };
  }

  /**
   * `[key_manager.features] enable_self_validation_jwt` changed by a reload: a signing-keys change
   * in the change log, so that connected gateways get the Jwks again with the new
   * validate_remotely at once (the Watch stream's events), without reconnecting. Not recorded (the
   * database failing): logged, and recorded at the next reload.
   */
  private announceSelfValidationChanges(store: Store): void {
    let announced: boolean | undefined = this.configStore.current.features.enableSelfValidationJwt;
    this.configStore.onChange((c) => {
      const selfValidation = c.features.enableSelfValidationJwt;
      if (selfValidation === announced) return;
      announced = selfValidation;
      store
        .transaction(async (s) => s.changed({ kind: "signing-keys" }))
        .catch((err: unknown) => {
          announced = undefined;
          this.logger.error(
            { err },
            "enable_self_validation_jwt changed, but the change log could not record it for the gateways: tried again at the next reload",
          );
        });
    });
  }

  /**
   * External key managers changed by a reload: this replica routes and validates by them from the
   * next call, its caches drop what they decided by the old ones, and (if a gateway receives
   * anything different of them) an external-key-managers change in the change log makes every
   * Watch stream send them again at once; at start always, for gateways resuming across a restart.
   * Not recorded (the database failing): logged, and recorded at the next reload that still differs
   * from what the gateways were last told.
   */
  private async announceExternalKeyManagerChanges(keyManagers: KeyManagers, store: Store, events: ChangeEvents): Promise<void> {
    let announced: GatewayExternalKeyManager[] | undefined;
    this.configStore.onChange((c) => {
      const before = keyManagers.registry.external;
      keyManagers.reconfigure(c);
      if (keyManagers.registry.external !== before) events.publish({ kind: "external-key-managers" });
      const next = gatewayExternalKeyManagers(c);
      if (isDeepStrictEqual(next, announced)) return;
      const previous = announced;
      announced = next;
      store
        .transaction(async (s) => s.changed({ kind: "external-key-managers" }))
        .catch((err: unknown) => {
          if (announced === next) announced = previous;
          this.logger.error(
            { err },
            "the external key managers changed, but the change log could not record it for the gateways: tried again at the next reload",
          );
        });
    });
    // At start too, whatever they were before: a gateway resuming its stream across a restart
    // (from_version, no snapshot) gets them as an event, not keeping those of the old file.
    const started = gatewayExternalKeyManagers(this.configStore.current);
    announced = started;
    try {
      await store.transaction(async (s) => s.changed({ kind: "external-key-managers" }));
    } catch (err) {
      if (announced === started) announced = undefined;
      this.logger.error({ err }, "the external key managers could not be recorded in the change log for the gateways at start: tried again at the next reload");
    }
  }

  /** The gateways' Watch streams over the change feed; their count is the stream watchers gauge. */
  private gatewaySync(store: Store, clock: Clock): GatewaySyncServiceImpl {
    const feed = this.feed;
    const db = this.db;
    if (!feed || !db) throw new Error("the change feed starts before the gateways' streams");
    const config = () => this.configStore.current;
    const snapshots = new SnapshotReader({
      db,
      clock,
      externalKeyManagers: () => gatewayExternalKeyManagers(config()),
      pageRows: () => config().gatewaySync.snapshotPageRows,
    });
    let sizeOf: (event: Parameters<GatewaySyncServiceImpl["sizeOf"]>[0]) => number = () => 0;
    const sync = new GatewaySync(
      feed.reader,
      store.changeLog,
      snapshots,
      () => config().gatewaySync,
      clock,
      (e) => sizeOf(e),
      () => gatewayExternalKeyManagers(config()),
    );
    const impl = new GatewaySyncServiceImpl(
      sync,
      () => config().gatewaySync,
      () => config().issuer,
      () => config().features.enableSelfValidationJwt,
    );
    sizeOf = impl.sizeOf;
    this.watchStreams = sync;
    this.unregisterWatchers = this.metrics.registerWatchers(
      () => sync.watchers,
      () => sync.bufferedBytes,
    );
    return impl;
  }

  /**
   * A new system client and a token of it, as the client would get one from /oauth2/token
   * (client_credentials, all of its scopes); tests and the benchmark make their callers so.
   */
  async createCaller(input: SystemClientInput, validitySeconds = 0): Promise<{ clientId: string; clientSecret: string; token: string }> {
    if (!this.systemClients || !this.tokens) throw new Error("the app is not started");
    const { client, clientSecret } = await this.systemClients.create(input);
    const issued = await this.tokens.issue(
      {
        clientId: client.clientId,
        clientSecret,
        grantType: "client_credentials",
        scopes: [],
        callbackUri: "",
        resourceOwnerUsername: "",
        resourceOwnerPassword: "",
        refreshToken: "",
        validityPeriodSeconds: validitySeconds,
        tokenToRevoke: "",
        requestParameters: {},
      },
      "local",
    );
    return { clientId: client.clientId, clientSecret, token: issued.accessToken };
  }

  /** Graceful stop: end the Watch streams, refuse new calls, finish those in flight, close the database. */
  async close(): Promise<void> {
    this.ready = false;
    this.databaseHealth?.stop();
    // Watch streams never finish by themselves: ended now (UNAVAILABLE), so the gateways resume
    // on another replica at once and the stop does not wait the grace out for them.
    this.watchStreams?.stop();
    await Promise.all([
      this.grpcServer?.close(SHUTDOWN_GRACE_MS),
      this.httpServer?.close(SHUTDOWN_GRACE_MS),
      this.metricsServer ? closeHttp(this.metricsServer, SHUTDOWN_GRACE_MS) : undefined,
    ]);
    await this.housekeeping?.stop();
    await this.feed?.close();
    this.feed = undefined;
    this.unregisterWatchers?.();
    this.cache?.close();
    this.decisions?.close();
    this.apiDirectory?.close();
    this.keyManagers?.close();
    await this.db?.destroy();
    this.db = undefined;
    await this.tracing?.close();
  }
}
