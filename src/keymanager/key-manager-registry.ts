import { InvalidArgumentError } from "../domain/errors.js";
import type { Store } from "../storage/store.js";
import type { KeyManager } from "./key-manager.js";
import { unverifiedIssuer } from "./oauth2/external-tokens.js";
import type { OAuth2KeyManager } from "./oauth2/oauth2-key-manager.js";
import type { ApplicationKeyRef } from "../domain/model/index.js";

/**
 * Every configured key manager by name: the resident one and the external OAuth2 servers.
 * Calls about a client go to the key manager recorded on it; calls about a token go to the one
 * that issued it (see `forToken`).
 */
export class KeyManagerRegistry {
  private byName: ReadonlyMap<string, OAuth2KeyManager>;
  private externals: readonly OAuth2KeyManager[] = [];

  constructor(
    readonly resident: KeyManager,
    /** In configuration order: the order opaque token patterns are tried. */
    external: readonly OAuth2KeyManager[],
    private readonly store: Store,
    /** The resident key manager's issuer (configured, so read per call). */
    private readonly residentIssuer: () => string = () => "",
  ) {
    this.byName = new Map();
    this.replace(external);
  }

  /** The external key managers, in configuration order: the order opaque token patterns are tried. */
  get external(): readonly OAuth2KeyManager[] {
    return this.externals;
  }

  /** Takes the external key managers of a reloaded configuration; the next call routes by them. */
  replace(external: readonly OAuth2KeyManager[]): void {
    this.externals = external;
    this.byName = new Map(external.map((km) => [km.name, km]));
  }

  /** The key manager a new client is created or mapped at: the resident one when none is named. */
  named(name: string): KeyManager {
    if (name === "" || name === this.resident.name) return this.resident;
    const km = this.byName.get(name);
    if (!km) throw InvalidArgumentError.field("key_manager", "no key manager of this name is configured");
    return km;
  }

  /**
   * The key manager holding a consumer key: the one recorded on its client. Unknown keys (and
   * the resident key manager's, whatever name it had when they were made) go to the resident one,
   * which answers for them.
   */
  async forConsumerKey(consumerKey: string): Promise<KeyManager> {
    if (this.external.length === 0) return this.resident;
    const client = await this.store.clients.find(consumerKey);
    return (client && this.byName.get(client.keyManager)) ?? this.resident;
  }

  /** The key manager holding an application's keys of a type; the resident one when there are none. */
  async forApplicationKey(ref: ApplicationKeyRef): Promise<KeyManager> {
    if (this.external.length === 0) return this.resident;
    const mapping = await this.store.applicationKeys.findByRef(ref);
    return mapping ? this.forConsumerKey(mapping.consumerKey) : this.resident;
  }

  /**
   * The key manager that issued a token, without asking anyone:
   * 1. a JWT goes to the external key manager whose issuer is its `iss`;
   * 2. any other token goes to the first external key manager, in configuration order, whose
   *    token_pattern matches the whole token;
   * 3. everything else is the resident key manager's.
   */
  forToken(token: string): KeyManager {
    return this.externalForToken(token) ?? this.resident;
  }

  /** The external key manager of a token, or undefined for the resident one. */
  externalForToken(token: string): OAuth2KeyManager | undefined {
    if (this.external.length === 0 || token === "") return undefined;
    return this.route(token).external;
  }

  /**
   * The rules of forToken with the one that decided (CanHandleToken): nothing is validated or
   * asked of anyone, only the token's format, a JWT's unverified `iss` and the token patterns.
   */
  route(token: string): TokenRoute {
    const issuer = unverifiedIssuer(token);
    if (issuer !== undefined) {
      const external = this.external.find((km) => km.issuer === issuer);
      if (external) return { keyManager: external, external, rule: "issuer" };
      return { keyManager: this.resident, rule: issuer === this.residentIssuer() ? "issuer" : "default" };
    }
    const external = this.external.find((km) => km.claimsOpaqueToken(token));
    return external ? { keyManager: external, external, rule: "token_pattern" } : { keyManager: this.resident, rule: "default" };
  }
}

/** Which key manager a token goes to, and by which rule (forToken's order). */
export interface TokenRoute {
  keyManager: KeyManager;
  /** Set when the key manager is an external one. */
  external?: OAuth2KeyManager;
  rule: "issuer" | "token_pattern" | "default";
}
