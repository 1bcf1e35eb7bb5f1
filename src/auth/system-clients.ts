import type { Clock } from "../domain/clock.js";
import { NotFoundError } from "../domain/errors.js";
import { Validator } from "../domain/validator.js";
import { newConsumerKey, newConsumerSecret } from "../keymanager/credentials.js";
import type { OAuthClient } from "../domain/model/index.js";
import { LIMITS } from "../keymanager/validation.js";
import type { Store } from "../storage/store.js";
import { isSystemScope, SCOPES, SYSTEM_SCOPES } from "./scopes.js";
import type { Page, PageQuery } from "../domain/paging.js";

export interface SystemClientInput {
  name: string;
  scopes: string[];
  subscriber: string;
  groupIds: string[];
}

export interface SystemClient {
  clientId: string;
  name: string;
  scopes: string[];
  subscriber: string;
  groupIds: string[];
  createdAt: Date;
  updatedAt: Date;
}

/** Lifetime of system clients' tokens: short, so a leaked one is soon worthless. */
export const SYSTEM_TOKEN_SECONDS = 3600;
const NO_SYSTEM_CLIENT = "no system client with this client_id";
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses
const GROUP = /^[^,\u0000-\u001f\u007f]+$/;

/**
 * The callers of this service. Each is an OAuth client of its own kind (client_credentials and
 * password grants, opaque tokens) whose scopes are system scopes; applications may not hold them.
 */
export class SystemClients {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly keyManagerName: () => string,
  ) {}

  async create(input: SystemClientInput): Promise<{ client: SystemClient; clientSecret: string }> {
    checkInput(input);
    const now = this.clock.now();
    const client: OAuthClient = {
      consumerKey: newConsumerKey(),
      consumerSecret: newConsumerSecret(),
      clientName: input.name,
      callbackUrls: [],
      grantTypes: ["client_credentials", "password"],
      scopes: [...new Set(input.scopes)],
      tokenType: "OPAQUE",
      validity: { applicationTokenSeconds: SYSTEM_TOKEN_SECONDS, userTokenSeconds: SYSTEM_TOKEN_SECONDS, refreshTokenSeconds: SYSTEM_TOKEN_SECONDS },
      additionalProperties: {},
      appOwner: input.subscriber,
      groupId: input.groupIds.join(","),
      keyManager: this.keyManagerName(),
      system: true,
      createdAt: now,
      updatedAt: now,
    };
    await this.store.clients.insert(client);
    return { client: toSystemClient(client), clientSecret: client.consumerSecret };
  }

  async get(clientId: string): Promise<SystemClient> {
    return toSystemClient(await this.find(clientId));
  }

  async list(page: PageQuery): Promise<Page<SystemClient>> {
    const { items, next } = await this.store.clients.listSystem(page);
    return { items: items.map(toSystemClient), next };
  }

  /**
   * A new secret ends what the old one gave, as an application's does: the client's tokens are
   * revoked with it, on this replica at once and on the others through the change feed.
   */
  async regenerateSecret(clientId: string): Promise<string> {
    await this.find(clientId);
    const secret = newConsumerSecret();
    await this.store.transaction(async (s) => {
      const now = this.clock.now();
      await s.clients.updateSecret(clientId, secret, now);
      await s.tokens.revokeClient(clientId, now);
      s.changed({ kind: "application", consumerKey: clientId });
      s.changed({ kind: "tokens", consumerKey: clientId });
    });
    return secret;
  }

  /** Deletes the client; its tokens go with it (the token table cascades). */
  async delete(clientId: string): Promise<void> {
    await this.find(clientId);
    await this.store.transaction(async (s) => {
      await s.clients.delete(clientId);
      s.changed({ kind: "application", consumerKey: clientId });
      s.changed({ kind: "tokens", consumerKey: clientId });
    });
  }

  private async find(clientId: string): Promise<OAuthClient> {
    const v = new Validator();
    v.text("client_id", clientId, LIMITS.id);
    v.throwIfInvalid();
    const client = await this.store.clients.find(clientId);
    if (!client?.system) throw new NotFoundError(NO_SYSTEM_CLIENT);
    return client;
  }
}

function checkInput(input: SystemClientInput): void {
  const v = new Validator();
  v.text("name", input.name, LIMITS.name);
  if (input.scopes.length === 0) v.add("scopes", `at least one of ${SYSTEM_SCOPES.join(", ")}`);
  input.scopes.forEach((s, i) => {
    if (!isSystemScope(s)) v.add(`scopes[${i}]`, `must be one of ${SYSTEM_SCOPES.join(", ")}`);
  });
  // A store caller acts for a subscriber; without one it would share every unowned application.
  if (input.scopes.includes(SCOPES.store) && !input.scopes.includes(SCOPES.admin) && input.subscriber.trim() === "") {
    v.add("subscriber", `is required with scope ${SCOPES.store} (the subscriber the store caller acts for)`);
  } else {
    v.optionalText("subscriber", input.subscriber, LIMITS.name);
  }
  if (input.groupIds.length > LIMITS.scopes) v.add("group_ids", `at most ${LIMITS.scopes} groups`);
  input.groupIds.forEach((g, i) => {
    if (!GROUP.test(g) || g.length > LIMITS.name) v.add(`group_ids[${i}]`, "must be 1 to 255 characters, no commas or control characters");
  });
  v.throwIfInvalid();
}

function toSystemClient(c: OAuthClient): SystemClient {
  return {
    clientId: c.consumerKey,
    name: c.clientName,
    scopes: c.scopes,
    subscriber: c.appOwner,
    groupIds: c.groupId === "" ? [] : c.groupId.split(","),
    createdAt: c.createdAt,
    updatedAt: c.updatedAt,
  };
}
