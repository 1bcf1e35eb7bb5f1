import { setTimeout as sleep } from "node:timers/promises";
import { type Client, Code, ConnectError } from "@connectrpc/connect";
import type { GatewaySyncService, KeyType as PbKeyType, WatchResponse } from "@keymanager/client";
import type { KeyMapping, TokenFacts } from "@keymanager/core";
import { compactVerify, decodeJwt } from "jose";
import { LRUCache } from "lru-cache";
import type { LocalCopy, Revocation } from "./local-copy.js";
import { CopyState, type SigningKeys } from "./copy-state.js";
import { type ExternalIssuer, ExternalJwtVerifier } from "./external-jwts.js";

export interface LiveCopyOptions {
  /** The copy is not decided from once what it shows was last confirmed current longer ago than this. */
  stalenessBoundMs: number;
  reconnectInitialDelayMs: number;
  reconnectMaxDelayMs: number;
  /** Only these APIs (by context) and their subscriptions; empty: every API. */
  apiContexts: string[];
  /** Only key mappings of this key type (UNSPECIFIED: both). */
  keyType: PbKeyType;
  now: () => number;
  /** JWTs whose signature check is kept, at most. */
  verifiedTokensMax: number;
  /** External key managers' JWKS (and metadata) fetches give up after this long. */
  jwksTimeoutMs: number;
  /** Told when the Watch stream fails (for the owner's log). */
  onStreamError?: (err: ConnectError) => void;
  onUnauthenticated?: () => void;
}

/**
 * The live copy from the server's Watch stream: a snapshot, then every change as an event,
 * applied in order; on a broken stream, resumed from the last version received (the server
 * sends exactly the missed events, or a new snapshot when it no longer has them). It may be
 * decided from while it was confirmed current (an event, a heartbeat or a snapshot's last chunk
 * received) within the staleness bound; past that, until the stream is back, it may not.
 */
export class LiveCopy implements LocalCopy {
  private state: CopyState | undefined;
  private building: CopyState | undefined;
  private lastVersion: bigint | undefined;
  private confirmedAt = Number.NEGATIVE_INFINITY;
  private readonly abort = new AbortController();
  private running: Promise<void> | undefined;
  private readonly loadedWaiters: (() => void)[] = [];
  /** JWTs whose signature was verified, with the key set that verified them, until they expire. */
  private readonly verified: LRUCache<string, VerifiedToken>;
  private readonly externalJwts: ExternalJwtVerifier;
  /** Snapshots received (first, and after a resume that was too old). */
  snapshots = 0;

  constructor(
    private readonly client: Client<typeof GatewaySyncService>,
    private readonly options: LiveCopyOptions,
  ) {
    this.verified = new LRUCache({ max: options.verifiedTokensMax });
    this.externalJwts = new ExternalJwtVerifier({ timeoutMs: options.jwksTimeoutMs, now: options.now });
  }

  start(): void {
    this.running ??= this.run();
  }

  /** Resolves once a snapshot has been applied (or the copy is closed). */
  loaded(): Promise<void> {
    if (this.state || this.abort.signal.aborted) return Promise.resolve();
    return new Promise((resolve) => this.loadedWaiters.push(resolve));
  }

  async close(): Promise<void> {
    this.abort.abort();
    for (const wake of this.loadedWaiters.splice(0)) wake();
    await this.running;
  }

  get version(): bigint | undefined {
    return this.lastVersion;
  }

  usable(now: number): boolean {
    return this.state !== undefined && now - this.confirmedAt <= this.options.stalenessBoundMs;
  }

  /** How long ago the copy was last confirmed current (ms); Infinity before the first snapshot. */
  age(now: number): number {
    return now - this.confirmedAt;
  }

  stats() {
    return { ...(this.state?.size ?? { apis: 0, keyMappings: 0, subscriptions: 0, revokedIds: 0 }), version: this.lastVersion, snapshots: this.snapshots };
  }

  api(context: string, version: string) {
    return this.state?.api(context, version);
  }
  resources(api: Parameters<CopyState["resources"]>[0]) {
    return this.state?.resources(api);
  }
  keyMapping(consumerKey: string): KeyMapping | undefined {
    return this.state?.keyMappings.get(consumerKey);
  }
  subscription(applicationId: string, apiId: string) {
    return this.state?.subscription(applicationId, apiId);
  }
  /** A registered scope (name, display name, description, role bindings), as the key manager has it. */
  scope(name: string) {
    return this.state?.scopes.get(name);
  }

  /**
   * A JWT of this key manager, verified against the streamed keys (signature and issuer; expiry
   * is judged by the decision against the caller's clock, as the server does): its facts, with
   * revokedAt when its id, its consumer key or its end user was revoked. Or a JWT of an external
   * key manager configured for JWKS validation, verified against its JWKS as the server does
   * (expired, not genuine, revoked, or naming another key manager's client: null, as the server
   * knows none of these). null: not genuine. undefined: not a JWT the copy can judge (opaque,
   * another issuer's, an external one's whose JWKS cannot be had, this key manager's while its keys
   * come with validate_remotely). "server": only the server can
   * tell (a revocation in the same second as the token's whole-second issue time).
   */
  verifyToken(token: string, now: number): Promise<JudgedToken> | JudgedToken {
    const state = this.state;
    if (!state || !JWT_SHAPE.test(token)) return undefined;
    // A signature is checked once per token and key set: later calls only look revocations up.
    const known = this.verified.get(token);
    if (known) {
      if (known.keys !== undefined && known.keys === state.signing) return this.withRevocation(known.facts, known.jti);
      if (known.external && known.external === state.externals.get(known.external.issuer)) return this.externalFacts(known, now);
    }
    return this.verify(token, state, now);
  }

  private async verify(token: string, state: CopyState, now: number): Promise<JudgedToken> {
    let claims: ReturnType<typeof decodeJwt>;
    try {
      claims = decodeJwt(token);
    } catch {
      return undefined;
    }
    // An external key manager's issuer first, as the server routes tokens.
    const external = typeof claims.iss === "string" ? state.externals.get(claims.iss.replace(/\/+$/, "")) : undefined;
    if (external) return external.jwtValidation === "jwks" ? this.verifyExternal(token, external, now) : undefined;
    const signing = state.signing;
    if (!signing || claims.iss !== signing.issuer || !token.startsWith("eyJ")) return undefined;
    // enable_self_validation_jwt = false: the server judges this key manager's JWTs (and the answer is kept).
    if (signing.validateRemotely) return undefined;
    try {
      await compactVerify(token, signing.keys);
    } catch {
      return null;
    }
    const consumerKey = typeof claims.client_id === "string" ? claims.client_id : "";
    if (consumerKey === "" || typeof claims.iat !== "number" || typeof claims.exp !== "number") return null;
    const facts: TokenFacts = {
      consumerKey,
      endUser: claims.sub && claims.sub !== consumerKey ? claims.sub : "",
      scopes: typeof claims.scope === "string" && claims.scope !== "" ? claims.scope.split(" ") : [],
      tokenType: "JWT",
      issuedAt: new Date(claims.iat * 1000),
      expiresAt: new Date(claims.exp * 1000),
      revokedAt: undefined,
    };
    const jti = typeof claims.jti === "string" ? claims.jti : "";
    if (facts.expiresAt.getTime() > this.options.now()) this.verified.set(token, { facts, jti, keys: signing });
    return this.withRevocation(facts, jti);
  }

  /** The server's record of an external JWT (keymanager/oauth2/external-tokens.ts recordFromJwt), from its verified claims. */
  private async verifyExternal(token: string, external: ExternalIssuer, now: number): Promise<JudgedToken> {
    const claims = await this.externalJwts.verify(token, external, now);
    if (!claims) return claims;
    // Without iat or exp the server takes its own clock at its look-up: only it can say.
    if (typeof claims.iat !== "number" || typeof claims.exp !== "number") return undefined;
    const consumerKey = typeof claims.client_id === "string" ? claims.client_id : typeof claims.azp === "string" ? claims.azp : "";
    const facts: TokenFacts = {
      consumerKey,
      endUser: claims.sub && claims.sub !== consumerKey ? claims.sub : "",
      scopes: (typeof claims.scope === "string" ? claims.scope : "").split(" ").filter((s) => s !== ""),
      tokenType: "JWT",
      issuedAt: new Date(claims.iat * 1000),
      expiresAt: new Date(claims.exp * 1000),
      revokedAt: undefined,
    };
    const entry: VerifiedToken = {
      facts,
      jti: typeof claims.jti === "string" ? claims.jti : "",
      external,
      notBefore: typeof claims.nbf === "number" ? claims.nbf : undefined,
    };
    if (facts.expiresAt.getTime() > now) this.verified.set(token, entry);
    return this.externalFacts(entry, now);
  }

  /**
   * An external JWT's facts now: the server holds none for it once it has expired (or before its
   * nbf), once it was revoked through it, or when its client_id names a client another key
   * manager holds (null, "not known here"); a consumer key or user revoked does not concern it.
   */
  private externalFacts(entry: VerifiedToken, now: number): TokenFacts | null {
    const { facts, jti, external, notBefore } = entry;
    if (facts.expiresAt.getTime() <= now || (notBefore !== undefined && notBefore > Math.floor(now / 1000))) return null;
    if (jti !== "" && this.state?.revokedIds.has(jti)) return null;
    const mapping = this.state?.keyMappings.get(facts.consumerKey);
    if (mapping && mapping.keyManager !== external?.name) return null;
    return facts;
  }

  private withRevocation(facts: TokenFacts, jti: string): TokenFacts | "server" {
    if (jti !== "" && this.state?.revokedIds.has(jti)) return { ...facts, revokedAt: facts.issuedAt };
    const bulk = this.bulkRevocation(facts);
    if (bulk === "unsure") return "server";
    return bulk === "revoked" ? { ...facts, revokedAt: facts.issuedAt } : facts;
  }

  /**
   * Whether every token of the consumer key or end user was revoked after this one was issued. A
   * JWT's issue time is whole seconds: revoked in the same second, it may have been issued
   * before or after ("unsure": the server knows).
   */
  private bulkRevocation(facts: TokenFacts): "revoked" | "unsure" | undefined {
    const state = this.state;
    if (!state) return undefined;
    const issued = facts.issuedAt.getTime();
    const latest = facts.tokenType === "JWT" ? issued + 999 : issued;
    let unsure = false;
    for (const at of [state.revokedByConsumer.get(facts.consumerKey), facts.endUser === "" ? undefined : state.revokedByUser.get(facts.endUser)]) {
      if (at === undefined || at < issued) continue;
      if (at >= latest) return "revoked";
      unsure = true;
    }
    return unsure ? "unsure" : undefined;
  }

  revocation(facts: TokenFacts, keptAtVersion: bigint | undefined): Revocation {
    const state = this.state;
    if (!state) return "recheck";
    const bulk = this.bulkRevocation(facts);
    if (bulk === "revoked") return "revoked";
    if (bulk === "unsure") return "recheck";
    const revokedAt = state.keptRecheckAt.get(facts.consumerKey);
    if (revokedAt !== undefined && (keptAtVersion === undefined || revokedAt > keptAtVersion)) return "recheck";
    // The external key managers changed since: the server may route or judge the token otherwise.
    const externalsAt = state.externalsChangedAt;
    if (externalsAt !== undefined && (keptAtVersion === undefined || externalsAt > keptAtVersion)) return "recheck";
    return undefined;
  }

  keepAnswerMs(keyManager: string): number | undefined {
    for (const external of this.state?.externals.values() ?? []) if (external.name === keyManager) return external.validationCacheMs;
    return undefined;
  }

  private async run(): Promise<void> {
    let delay = this.options.reconnectInitialDelayMs;
    const signal = this.abort.signal;
    while (!signal.aborted) {
      try {
        const request = { fromVersion: this.lastVersion, apiContexts: this.options.apiContexts, keyType: this.options.keyType };
        for await (const message of this.client.watch(request, { signal })) {
          this.apply(message);
          delay = this.options.reconnectInitialDelayMs;
        }
      } catch (err) {
        if (signal.aborted) return;
        const e = ConnectError.from(err);
        this.options.onStreamError?.(e);
        if (e.code === Code.Unauthenticated) this.options.onUnauthenticated?.();
      }
      // A snapshot cut short is of no use: the next stream starts over from the last version.
      this.building = undefined;
      try {
        await sleep(delay, undefined, { signal });
      } catch {
        return;
      }
      delay = Math.min(delay * 2, this.options.reconnectMaxDelayMs);
    }
  }

  private apply(message: WatchResponse): void {
    const m = message.message;
    const now = this.options.now();
    switch (m.case) {
      case "snapshotChunk": {
        this.building ??= new CopyState();
        for (const entity of m.value.entities) this.building.upsert(entity, m.value.version);
        if (m.value.lastChunk) {
          this.building.replacing(this.state, m.value.version);
          this.state = this.building;
          this.building = undefined;
          this.lastVersion = m.value.version;
          this.confirmedAt = now;
          this.snapshots++;
          for (const wake of this.loadedWaiters.splice(0)) wake();
        }
        return;
      }
      case "event": {
        const state = this.state;
        if (!state) return;
        const change = m.value.change;
        if (change.case === "upsert") state.upsert(change.value, m.value.version);
        else if (change.case === "delete") state.delete(change.value);
        this.lastVersion = m.value.version;
        this.confirmedAt = now;
        return;
      }
      case "heartbeat":
        if (!this.state) return;
        this.lastVersion = m.value.version;
        this.confirmedAt = now;
        this.state.forgetExpired(now);
        return;
      case undefined:
        return;
    }
  }
}

/** Shaped like a JWT, as the server tells them (three base64url parts). */
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** What the copy can say of a token (LocalCopy.verifyToken). */
type JudgedToken = TokenFacts | null | undefined | "server";

interface VerifiedToken {
  facts: TokenFacts;
  jti: string;
  /** The key set that verified this key manager's JWT... */
  keys?: SigningKeys;
  /** ...or the external key manager whose JWKS did, and the token's nbf. */
  external?: ExternalIssuer;
  notBefore?: number;
}
