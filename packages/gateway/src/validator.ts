import { type Client, Code, ConnectError } from "@connectrpc/connect";
import { createKeyManagerClient, GatewaySyncService, type KeyManagerClient, AuthLevel as PbAuthLevel, KeyType as PbKeyType } from "@keymanager/client";
import {
  AUTH_LEVELS as AUTH_LEVEL_NAMES,
  type AuthLevel,
  type Decision,
  type DecisionRequest,
  decideAsync,
  Status,
  type TokenFacts,
  TOKEN_TYPES,
  type TokenType,
} from "@keymanager/core";
import { LRUCache } from "lru-cache";
import { answerFromDecision, answerFromResponse, answerWithStatus, type GatewayAnswer } from "./answer.js";
import { LiveCopy } from "./live-copy.js";
import type { LocalCopy } from "./local-copy.js";
import { type GatewayValidatorOptions, type ResolvedOptions, resolveOptions } from "./options.js";
import { keptUntil, TokenCache } from "./token-cache.js";
import { ValidationStream } from "./validation-stream.js";

/** The gateway's question: ValidateToken's request. */
export interface ValidateInput {
  /** The API's context, for example "/pizzashack". */
  context: string;
  version: string;
  /** The API caller's access token; "" when none was presented. */
  token: string;
  /** The URI template the gateway matched ("/order/{id}")... */
  resource?: string;
  /** ...or the raw request path from the context on ("/pizzashack/1.0.0/order/7?x=1"): the most specific template wins. */
  path?: string;
  /** The HTTP method. */
  verb: string;
  /** The resource's auth level as the gateway knows it; default: the registered resource's. */
  requiredAuthLevel?: AuthLevel;
}

/** A check the server could not work on (a request that is not well formed): its gRPC code and message. */
export class GatewayRequestError extends Error {
  constructor(
    readonly code: Code,
    message: string,
  ) {
    super(message);
    this.name = "GatewayRequestError";
  }
}

export interface GatewayValidatorStats {
  /** The live copy: whether it is decided from now, how long ago it was confirmed current, what it holds. */
  copy: { usable: boolean; ageMs: number; version: string; apis: number; keyMappings: number; subscriptions: number; snapshots: number } | undefined;
  /** Decided in process (from the copy). */
  local: number;
  /** Asked of the server (copy not usable, an opaque token not kept, or a token the copy cannot judge). */
  remote: number;
  /** Opaque tokens' facts kept now. */
  tokensKept: number;
}

export interface GatewayValidator {
  /**
   * ValidateToken's answer for the request: decided in process from the live copy when it is
   * usable (the same answer object for the same question while the copy is unchanged: do not
   * modify it), else by the server over the ValidateTokens stream. When the server cannot be asked
   * (unreachable past callTimeoutMs, or too many checks waiting): 900912, key manager not
   * available. Throws TypeError for a request missing fields, GatewayRequestError when the server
   * refuses the request itself.
   */
  validate(input: ValidateInput): Promise<GatewayAnswer>;
  stats(): GatewayValidatorStats;
  /** Resolves once the live copy has its first snapshot (at once without one). */
  ready(): Promise<void>;
  /** Ends the streams to the server; calls still waiting are answered 900912. */
  close(): Promise<void>;
}

export interface ValidatorDeps {
  /** The live copy (the Watch stream); none: every call is asked of the server. */
  copy?: LocalCopy;
  /** The clock, epoch ms (tests). */
  now?: () => number;
  /** Told when the ValidateTokens or the Watch stream fails (for a log); never given the token. */
  onStreamError?: (err: ConnectError) => void;
  /** The Watch stream's client; default: over the same options as ValidateTokens (tests put a cuttable proxy in its way). */
  watchClient?: Client<typeof GatewaySyncService>;
}

/** Thrown by the token fact when only the server can judge the token: the decision is the server's. */
const ASK_SERVER = Symbol("ask the server");

const AUTH_LEVELS: Record<AuthLevel, PbAuthLevel> = {
  APPLICATION: PbAuthLevel.APPLICATION,
  APPLICATION_USER: PbAuthLevel.APPLICATION_USER,
  ANY: PbAuthLevel.ANY,
  NONE: PbAuthLevel.NONE,
};

/** A client of the key manager for the validator's options (the bearer token or credentials, TLS). */
export function keyManagerClient(o: ResolvedOptions): KeyManagerClient {
  const secure = o.tls !== undefined;
  const baseUrl = o.baseUrl ?? (/^https?:\/\//.test(o.target ?? "") ? (o.target as string) : `${secure ? "https" : "http"}://${o.target}`);
  return createKeyManagerClient({
    baseUrl,
    protocol: o.baseUrl ? "connect" : "grpc",
    httpVersion: "2",
    ...(o.token !== undefined ? { token: o.token } : { credentials: o.credentials }),
    tokenUrl: o.tokenUrl,
    nodeOptions: o.tls ? { ca: o.tls.ca, cert: o.tls.cert, key: o.tls.key, servername: o.tls.servername } : undefined,
  });
}

/**
 * A gateway's validator: ValidateToken's answers at in-process speed where the live copy allows,
 * the server's over one pipelined ValidateTokens stream otherwise.
 */
export function createGatewayValidator(options: GatewayValidatorOptions, deps: ValidatorDeps = {}): GatewayValidator {
  const o = resolveOptions(options);
  const km = keyManagerClient(o);
  let live: LiveCopy | undefined;
  if (o.watch && !deps.copy) {
    const watchKm = o.watchTarget === undefined ? km : keyManagerClient({ ...o, target: o.watchTarget });
    live = new LiveCopy(deps.watchClient ?? watchKm.client(GatewaySyncService), {
      stalenessBoundMs: o.stalenessBoundMs,
      reconnectInitialDelayMs: o.reconnectInitialDelayMs,
      reconnectMaxDelayMs: o.reconnectMaxDelayMs,
      apiContexts: o.apiContexts,
      keyType: o.keyType === "PRODUCTION" ? PbKeyType.PRODUCTION : o.keyType === "SANDBOX" ? PbKeyType.SANDBOX : PbKeyType.UNSPECIFIED,
      now: deps.now ?? Date.now,
      verifiedTokensMax: o.tokenCacheMax,
      jwksTimeoutMs: o.jwksTimeoutMs,
      onStreamError: deps.onStreamError,
      onUnauthenticated: () => watchKm.tokens?.invalidate(),
    });
    live.start();
  }
  return new Validator(o, km, { ...deps, copy: deps.copy ?? live }, live);
}

class Validator implements GatewayValidator {
  private readonly stream: ValidationStream;
  private readonly tokens: TokenCache;
  private readonly now: () => number;
  private readonly counts = { local: 0, remote: 0 };
  /** Answers decided from the copy, by question, valid while the copy shows the same version. */
  private readonly decisions: LRUCache<string, { answer: GatewayAnswer; version: bigint | undefined; validUntil: number }>;

  constructor(
    o: ResolvedOptions,
    km: KeyManagerClient,
    private readonly deps: ValidatorDeps,
    private readonly live: LiveCopy | undefined,
  ) {
    this.now = deps.now ?? Date.now;
    this.tokens = new TokenCache(o.tokenCacheMax);
    this.decisions = new LRUCache({ max: o.tokenCacheMax });
    this.stream = new ValidationStream(km.tokenValidation, {
      maxPending: o.maxPending,
      callTimeoutMs: o.callTimeoutMs,
      reconnectInitialDelayMs: o.reconnectInitialDelayMs,
      reconnectMaxDelayMs: o.reconnectMaxDelayMs,
      onStreamEnd: (err) => {
        if (err) deps.onStreamError?.(err);
      },
      onUnauthenticated: () => km.tokens?.invalidate(),
    });
  }

  async validate(input: ValidateInput): Promise<GatewayAnswer> {
    checkInput(input);
    const now = this.now();
    const copy = this.deps.copy;
    if (!copy?.usable(now)) return this.remote(input);
    // The same question on the same copy: the same answer, until its token expires.
    const key = decisionKey(input);
    const known = this.decisions.get(key);
    if (known && known.version === copy.version && now < known.validUntil) {
      this.counts.local++;
      return known.answer;
    }
    const version = copy.version;
    // Lowered by a kept answer the server will not vouch for that long (an external token's).
    const bound = { until: Number.POSITIVE_INFINITY };
    let decision: Decision;
    try {
      decision = await decideAsync(
        {
          api: (c, v) => copy.api(c, v),
          resources: (api) => copy.resources(api),
          keyMapping: (k) => copy.keyMapping(k),
          subscription: (a, b) => copy.subscription(a, b),
          token: () => this.localToken(copy, input.token, now, bound),
        },
        decisionRequest(input, now),
      );
    } catch (err) {
      if (err !== ASK_SERVER) throw err;
      // Neither the copy nor what was kept can judge the token: the server decides, and vouches for it.
      return this.remoteAndKeep(input, now);
    }
    this.counts.local++;
    const answer = answerFromDecision(decision);
    const validUntil = Math.min(decision.token?.expiresAt.getTime() ?? Number.POSITIVE_INFINITY, bound.until);
    if (copy.version === version) this.decisions.set(key, { answer, version, validUntil });
    return answer;
  }

  stats(): GatewayValidatorStats {
    const live = this.live;
    let copy: GatewayValidatorStats["copy"];
    if (live) {
      const now = this.now();
      const { apis, keyMappings, subscriptions, version, snapshots } = live.stats();
      copy = { usable: live.usable(now), ageMs: live.age(now), version: String(version ?? ""), apis, keyMappings, subscriptions, snapshots };
    }
    return { ...this.counts, tokensKept: this.tokens.size, copy };
  }

  ready(): Promise<void> {
    return this.live?.loaded() ?? Promise.resolve();
  }

  async close(): Promise<void> {
    await Promise.all([this.stream.close(), this.live?.close()]);
  }

  /** The token's facts from the copy (a JWT) or from what the server said of it before. */
  private localToken(copy: LocalCopy, token: string, now: number, bound: { until: number }): TokenFacts | undefined | Promise<TokenFacts | undefined> {
    const verified = copy.verifyToken(token, now);
    if (verified instanceof Promise) return verified.then((v) => this.judged(copy, token, v, now, bound));
    return this.judged(copy, token, verified, now, bound);
  }

  private judged(
    copy: LocalCopy,
    token: string,
    verified: TokenFacts | null | undefined | "server",
    now: number,
    bound: { until: number },
  ): TokenFacts | undefined {
    if (verified === null) return undefined;
    if (verified === "server") throw ASK_SERVER;
    // A genuine JWT whose application the copy does not hold: the server judges (its token may be gone).
    if (verified !== undefined) {
      if (!copy.keyMapping(verified.consumerKey)) throw ASK_SERVER;
      return verified;
    }
    const key = TokenCache.key(token);
    const kept = this.tokens.get(key, now);
    if (!kept) throw ASK_SERVER;
    // Its application gone (deleted: its tokens with it), the server says what is left of it.
    if (!copy.keyMapping(kept.facts.consumerKey)) {
      this.tokens.delete(key);
      throw ASK_SERVER;
    }
    const revocation = copy.revocation(kept.facts, kept.version);
    if (revocation === "recheck") {
      this.tokens.delete(key);
      throw ASK_SERVER;
    }
    bound.until = Math.min(bound.until, keptUntil(kept));
    return revocation === "revoked" ? { ...kept.facts, revokedAt: new Date(now) } : kept.facts;
  }

  private async remoteAndKeep(input: ValidateInput, now: number): Promise<GatewayAnswer> {
    const version = this.deps.copy?.version;
    const answer = await this.remote(input);
    const facts = tokenFacts(answer);
    if (!facts) return answer;
    // An external key manager's token: kept no longer than the server keeps its server's word on it.
    const keepMs = this.deps.copy?.keepAnswerMs?.(answer.keyManager);
    this.tokens.set(TokenCache.key(input.token), { facts, version, keepUntil: keepMs === undefined ? undefined : now + keepMs }, now);
    return answer;
  }

  private async remote(input: ValidateInput): Promise<GatewayAnswer> {
    this.counts.remote++;
    try {
      const response = await this.stream.check({
        context: input.context,
        version: input.version,
        accessToken: input.token,
        requiredAuthLevel: input.requiredAuthLevel ? AUTH_LEVELS[input.requiredAuthLevel] : PbAuthLevel.UNSPECIFIED,
        matchingResource: input.resource ?? "",
        requestPath: input.path ?? "",
        httpVerb: input.verb,
      });
      return answerFromResponse(response);
    } catch (err) {
      const e = ConnectError.from(err);
      if (e.code === Code.InvalidArgument) throw new GatewayRequestError(e.code, e.rawMessage);
      return answerWithStatus(Status.KEY_MANAGER_NOT_AVAILABLE, `the key manager could not be asked (${Code[e.code]}): ${e.rawMessage}`);
    }
  }
}

function checkInput(input: ValidateInput): void {
  const missing: string[] = [];
  if (!input.context) missing.push("context");
  if (!input.version) missing.push("version");
  if (!input.verb) missing.push("verb");
  if (!input.resource && !input.path) missing.push("resource or path");
  if (typeof input.token !== "string") missing.push('token ("" when none)');
  if (missing.length > 0) throw new TypeError(`validate: ${missing.join(", ")} required`);
  if (input.requiredAuthLevel !== undefined && !AUTH_LEVEL_NAMES.includes(input.requiredAuthLevel)) {
    throw new TypeError(`validate: requiredAuthLevel must be one of ${AUTH_LEVEL_NAMES.join(", ")}`);
  }
}

function decisionKey(i: ValidateInput): string {
  return `${i.token}\u0000${i.context}\u0000${i.version}\u0000${i.resource ?? ""}\u0000${i.path ?? ""}\u0000${i.verb}\u0000${i.requiredAuthLevel ?? ""}`;
}

function decisionRequest(input: ValidateInput, now: number): DecisionRequest {
  return {
    context: input.context,
    version: input.version,
    hasToken: input.token !== "",
    requiredAuthLevel: input.requiredAuthLevel,
    matchingResource: input.resource ?? "",
    requestPath: input.path ?? "",
    httpVerb: input.verb,
    now,
  };
}

/** The token's facts in a server's answer, when its checks got past the token (else undefined). */
function tokenFacts(a: GatewayAnswer): TokenFacts | undefined {
  if (a.consumerKey === "" || !TOKEN_TYPES.includes(a.tokenType as TokenType)) return undefined;
  return {
    consumerKey: a.consumerKey,
    endUser: a.endUserName,
    scopes: a.scopes,
    tokenType: a.tokenType as TokenType,
    issuedAt: new Date(a.issuedTimeMs),
    expiresAt: new Date(a.issuedTimeMs + a.validityPeriodMs),
    revokedAt: undefined,
  };
}
