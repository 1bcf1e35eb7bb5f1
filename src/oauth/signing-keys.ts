import { randomUUID } from "node:crypto";
import { type CryptoKey, type JWK, type JWTPayload, SignJWT, createLocalJWKSet, errors, exportJWK, generateKeyPair, importJWK, jwtVerify } from "jose";
import type { Logger } from "pino";
import type { ChangeEvents } from "../domain/change-events.js";
import type { Clock } from "../domain/clock.js";
import type { StoredSigningKey } from "../storage/signing-key-repository.js";
import type { Store } from "../storage/store.js";

export interface PublishedKey {
  kid: string;
  alg: string;
  active: boolean;
  createdAt: Date;
  retiredAt: Date | undefined;
}

interface ActiveKey {
  kid: string;
  alg: "ES256" | "RS256";
  privateKey: CryptoKey;
}

/** At most one unprompted reload per this many ms, however many unknown `kid`s arrive. */
const UNKNOWN_KID_RELOAD_MS = 5_000;

/**
 * JWT signing keys: one active key signs; retired keys stay published in the JWKS until every
 * token they signed has expired. Verification uses the keys held in memory, never the network.
 * Replicas sharing a database read the keys again when another one rotates them (the change
 * feed), and when a token names a key they do not hold (a missed change, or two replicas that
 * each created a first key at the same start).
 */
export class SigningKeys {
  private active: ActiveKey | undefined;
  private published: JWK[] = [];
  private described: PublishedKey[] = [];
  private verifier: ReturnType<typeof createLocalJWKSet> | undefined;
  private reloading: Promise<void> | undefined;
  private lastUnpromptedReload = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly settings: () => { algorithm: "ES256" | "RS256"; maxTokenSeconds: number },
    events?: ChangeEvents,
    private readonly logger?: Logger,
  ) {
    events?.subscribe((change, origin) => {
      if (origin === "peer" && (change.kind === "signing-keys" || change.kind === "all")) void this.reload();
    });
  }

  /** Loads the keys, creating the first one (or one of the configured algorithm) when missing. */
  async load(): Promise<void> {
    let keys = await this.store.signingKeys.list();
    if (!keys.some((k) => !k.retiredAt && k.alg === this.settings().algorithm)) {
      await this.rotate();
      keys = await this.store.signingKeys.list();
    }
    await this.use(keys);
  }

  /** Retires the active key and starts signing with a new one. */
  async rotate(): Promise<string> {
    const alg = this.settings().algorithm;
    const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
    const kid = randomUUID();
    const now = this.clock.now();
    const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: "sig" };
    const privateJwk = { ...(await exportJWK(privateKey)), kid, alg };
    await this.store.transaction(async (s) => {
      await s.signingKeys.retireAll(now);
      await s.signingKeys.insert({ kid, alg, privateJwk, publicJwk, createdAt: now, retiredAt: undefined });
      await s.signingKeys.deleteRetiredBefore(new Date(now.getTime() - this.settings().maxTokenSeconds * 1000));
      s.changed({ kind: "signing-keys" });
    });
    await this.use(await this.store.signingKeys.list());
    return kid;
  }

  /** Reads the keys again (one read at a time); a failure keeps the keys held and is logged. */
  reload(): Promise<void> {
    this.reloading ??= this.store.signingKeys
      .list()
      .then((keys) => this.use(keys))
      .catch((err: unknown) => this.logger?.error({ err }, "signing keys: reading them again failed"))
      .finally(() => {
        this.reloading = undefined;
      });
    return this.reloading;
  }

  private async use(keys: StoredSigningKey[]): Promise<void> {
    const now = this.clock.nowMs();
    const horizon = this.settings().maxTokenSeconds * 1000;
    const current = keys.find((k) => !k.retiredAt && k.alg === this.settings().algorithm);
    if (!current) throw new Error("no active signing key");
    this.active = { kid: current.kid, alg: current.alg, privateKey: (await importJWK(current.privateJwk as JWK, current.alg)) as CryptoKey };
    // The active key first, then the most recently retired.
    const live = keys
      .filter((k) => !k.retiredAt || k.retiredAt.getTime() + horizon > now)
      .sort(
        (a, b) =>
          (b.retiredAt?.getTime() ?? Number.POSITIVE_INFINITY) - (a.retiredAt?.getTime() ?? Number.POSITIVE_INFINITY) ||
          b.createdAt.getTime() - a.createdAt.getTime(),
      );
    this.published = live.map((k) => k.publicJwk as JWK);
    this.described = live.map((k) => ({ kid: k.kid, alg: k.alg, active: k.kid === current.kid, createdAt: k.createdAt, retiredAt: k.retiredAt }));
    this.verifier = createLocalJWKSet({ keys: this.published });
  }

  /** The published keys, newest first, without key material. */
  list(): PublishedKey[] {
    return this.described;
  }

  /** The public keys, as served at GET /oauth2/jwks. */
  jwks(): { keys: JWK[] } {
    return { keys: this.published };
  }

  /** A JWT signed with the active key: an access token (RFC 9068 "at+jwt"), or an OpenID Connect id_token ("JWT"). */
  async sign(claims: JWTPayload, expiresAt: Date, issuedAt: Date, typ: "at+jwt" | "JWT" = "at+jwt"): Promise<string> {
    const key = this.active;
    if (!key) throw new Error("signing keys not loaded");
    return new SignJWT(claims)
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ })
      .setIssuedAt(Math.floor(issuedAt.getTime() / 1000))
      .setExpirationTime(Math.floor(expiresAt.getTime() / 1000))
      .sign(key.privateKey);
  }

  /**
   * False for a JWT that does not carry our signature and issuer, so the database is never asked
   * about forged tokens; true for opaque tokens, which only the database can judge.
   */
  async vouchFor(token: string, issuer: string): Promise<boolean> {
    return !looksLikeJwt(token) || (await this.verify(token, issuer)) !== undefined;
  }

  /** Verifies signature and issuer; expiry is judged by the caller against its clock. */
  async verify(token: string, issuer: string): Promise<JWTPayload | undefined> {
    const first = await this.tryVerify(token, issuer);
    if (first !== "unknown key") return first;
    // Signed by a key this replica does not hold: perhaps another replica's newer one.
    const now = this.clock.nowMs();
    if (this.reloading === undefined && now - this.lastUnpromptedReload < UNKNOWN_KID_RELOAD_MS) return undefined;
    if (this.reloading === undefined) this.lastUnpromptedReload = now;
    await this.reload();
    const second = await this.tryVerify(token, issuer);
    return second === "unknown key" ? undefined : second;
  }

  private async tryVerify(token: string, issuer: string): Promise<JWTPayload | undefined | "unknown key"> {
    if (!this.verifier) return undefined;
    try {
      const { payload } = await jwtVerify(token, this.verifier, {
        issuer,
        currentDate: this.clock.now(),
        clockTolerance: Number.MAX_SAFE_INTEGER,
      });
      return payload;
    } catch (err) {
      return err instanceof errors.JWKSNoMatchingKey ? "unknown key" : undefined;
    }
  }
}

/** Three base64url segments: the only tokens worth trying as JWTs. */
export function looksLikeJwt(token: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token);
}
