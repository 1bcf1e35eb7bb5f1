import { randomUUID } from "node:crypto";
import type { Clock } from "../domain/clock.js";
import { FailedPreconditionError, NotFoundError } from "../domain/errors.js";
import type { ConsumerSecretRecord, OAuthClient } from "../domain/model/index.js";
import type { Page, PageQuery } from "../domain/paging.js";
import { Validator } from "../domain/validator.js";
import { LOCK, type ReadOptions } from "../storage/locks.js";
import type { Store } from "../storage/store.js";
import { newConsumerSecret, secretHash, secretHint } from "./credentials.js";
import { NO_CLIENT } from "./key-manager.js";
import { LIMITS } from "./validation.js";

/** CreateConsumerSecret's input, checked in shape by the service. */
export interface NewConsumerSecret {
  consumerKey: string;
  description: string;
  /** 0: accepted until revoked. */
  validitySeconds: number;
}

/** A new secret: its record, and its value, shown this once. */
export interface CreatedConsumerSecret {
  secret: ConsumerSecretRecord;
  consumerSecret: string;
}

export interface SecretLimits {
  maxPerClient: number;
  maxValiditySeconds: number;
}

export const NO_SECRET = "the client has no consumer secret with this id";

/**
 * Consumer secrets added to a client of this service (WSO2 4.7 multiple consumer secrets): made
 * with an optional expiry and description, shown once, kept as SHA-256 hashes, accepted by client
 * authentication (oauth/token-service.ts) until they expire or are revoked. The client's own
 * secret (CreateApplication's, replaced by RegenerateConsumerSecret) is not among them.
 *
 * Every change is recorded as a change of the application, so the clients' caches of every
 * replica drop the client at once (a revoked secret is refused on the next call).
 */
export class ConsumerSecrets {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly limits: () => SecretLimits,
  ) {}

  async create(input: NewConsumerSecret): Promise<CreatedConsumerSecret> {
    const limits = this.limits();
    const v = new Validator();
    v.optionalText("secret.description", input.description, LIMITS.name);
    v.nonNegativeInteger("validity_period_seconds", input.validitySeconds, limits.maxValiditySeconds);
    v.throwIfInvalid();
    const consumerSecret = newConsumerSecret();
    const now = this.clock.now();
    const secret: ConsumerSecretRecord = {
      secretId: randomUUID(),
      consumerKey: input.consumerKey,
      secretHash: secretHash(consumerSecret),
      hint: secretHint(consumerSecret),
      description: input.description,
      createdAt: now,
      expiresAt: input.validitySeconds > 0 ? new Date(now.getTime() + input.validitySeconds * 1000) : undefined,
    };
    await this.store.transaction(async (s) => {
      // Locked: concurrent creates for one client take turns, so the bound holds.
      await applicationClient(s, input.consumerKey, LOCK);
      await s.consumerSecrets.deleteExpired(input.consumerKey, now);
      if ((await s.consumerSecrets.countUnexpired(input.consumerKey, now)) >= limits.maxPerClient) {
        throw new FailedPreconditionError(`the client already holds ${limits.maxPerClient} consumer secrets (secrets.max_per_client): revoke one first`);
      }
      await s.consumerSecrets.insert(secret);
      s.changed({ kind: "application", consumerKey: input.consumerKey });
    });
    return { secret, consumerSecret };
  }

  async list(consumerKey: string, page: PageQuery): Promise<Page<ConsumerSecretRecord>> {
    await applicationClient(this.store, consumerKey);
    return this.store.consumerSecrets.list(consumerKey, page);
  }

  async revoke(consumerKey: string, secretId: string): Promise<void> {
    await this.store.transaction(async (s) => {
      await applicationClient(s, consumerKey);
      if (!(await s.consumerSecrets.delete(consumerKey, secretId))) throw new NotFoundError(NO_SECRET);
      s.changed({ kind: "application", consumerKey });
    });
  }
}

/** The client of an application: system clients (this service's callers) are not applications. */
export async function applicationClient(s: Store, consumerKey: string, options: ReadOptions = {}): Promise<OAuthClient> {
  const client = await s.clients.find(consumerKey, options);
  if (!client || client.system) throw new NotFoundError(NO_CLIENT);
  return client;
}
