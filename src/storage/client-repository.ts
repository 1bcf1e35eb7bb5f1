import type { Knex } from "knex";
import { NotFoundError } from "../domain/errors.js";
import type { ClientSettings, OAuthClient, TokenType } from "../domain/model/index.js";
import { normaliseDbError } from "./errors.js";
import type { Page, PageQuery } from "../domain/paging.js";
import { type KeyColumn, readPage } from "./keyset.js";
import { lockRows, type ReadOptions } from "./locks.js";
import { fromJson, toDate, toJson, toMillis } from "./rows.js";
import type { SecretBox } from "./secret-box.js";

interface ClientRow {
  consumer_key: string;
  secret_ciphertext: string;
  client_name: string;
  callback_urls: string;
  grant_types: string;
  scopes: string;
  token_type: string;
  app_token_validity: number;
  user_token_validity: number;
  refresh_token_validity: number;
  additional_properties: string;
  app_owner: string;
  group_id: string;
  key_manager: string;
  system_client: boolean | number;
  token_endpoint_auth_method: string;
  created_at: number | string;
  updated_at: number | string;
}

const TABLE = "oauth_clients";
const SYSTEM_CLIENT_KEY: KeyColumn[] = [
  { column: "created_at", type: "number" },
  { column: "consumer_key", type: "string" },
];

/** OAuth clients; consumer secrets are encrypted on the way in and decrypted on the way out. */
export class ClientRepository {
  constructor(
    private readonly db: Knex | Knex.Transaction,
    private readonly box: SecretBox,
  ) {}

  async insert(client: OAuthClient): Promise<void> {
    try {
      await this.db<ClientRow>(TABLE).insert(this.toRow(client));
    } catch (err) {
      normaliseDbError(err, { duplicate: "an OAuth client with this consumer key already exists" });
    }
  }

  async find(consumerKey: string, options: ReadOptions = {}): Promise<OAuthClient | undefined> {
    const row = await lockRows(this.db<ClientRow>(TABLE).where({ consumer_key: consumerKey }), options).first();
    return row ? this.fromRow(row) : undefined;
  }

  async get(consumerKey: string): Promise<OAuthClient> {
    const client = await this.find(consumerKey);
    if (!client) throw new NotFoundError("no OAuth application with this consumer key");
    return client;
  }

  async updateSettings(consumerKey: string, settings: ClientSettings, updatedAt: Date): Promise<void> {
    const changed = await this.db<ClientRow>(TABLE)
      .where({ consumer_key: consumerKey })
      .update({ ...settingsColumns(settings), updated_at: toMillis(updatedAt) });
    if (changed === 0) throw new NotFoundError("no OAuth application with this consumer key");
  }

  async updateSecret(consumerKey: string, secret: string, updatedAt: Date): Promise<void> {
    const changed = await this.db<ClientRow>(TABLE)
      .where({ consumer_key: consumerKey })
      .update({ secret_ciphertext: this.box.encrypt(secret), updated_at: toMillis(updatedAt) });
    if (changed === 0) throw new NotFoundError("no OAuth application with this consumer key");
  }

  async updateOwner(consumerKey: string, appOwner: string, updatedAt: Date): Promise<void> {
    const changed = await this.db<ClientRow>(TABLE)
      .where({ consumer_key: consumerKey })
      .update({ app_owner: appOwner, updated_at: toMillis(updatedAt) });
    if (changed === 0) throw new NotFoundError("no OAuth application with this consumer key");
  }

  /** A page of system clients, oldest first. */
  listSystem(page: PageQuery): Promise<Page<OAuthClient>> {
    const q = this.db<ClientRow>(TABLE).where({ system_client: true });
    return readPage(
      q,
      SYSTEM_CLIENT_KEY,
      page,
      (r: ClientRow) => this.fromRow(r),
      (c) => [toMillis(c.createdAt), c.consumerKey],
    );
  }

  /** Deletes the client; its application key mapping goes with it. */
  async delete(consumerKey: string): Promise<boolean> {
    return (await this.db<ClientRow>(TABLE).where({ consumer_key: consumerKey }).delete()) > 0;
  }

  private toRow(client: OAuthClient): ClientRow {
    return {
      consumer_key: client.consumerKey,
      secret_ciphertext: this.box.encrypt(client.consumerSecret),
      ...settingsColumns(client),
      app_owner: client.appOwner,
      group_id: client.groupId,
      key_manager: client.keyManager,
      system_client: client.system === true,
      token_endpoint_auth_method: client.publicClient ? "none" : "client_secret_basic",
      created_at: toMillis(client.createdAt),
      updated_at: toMillis(client.updatedAt),
    };
  }

  private fromRow(row: ClientRow): OAuthClient {
    return {
      consumerKey: row.consumer_key,
      consumerSecret: this.box.decrypt(row.secret_ciphertext),
      clientName: row.client_name,
      callbackUrls: fromJson(row.callback_urls),
      grantTypes: fromJson(row.grant_types),
      scopes: fromJson(row.scopes),
      tokenType: row.token_type as TokenType,
      validity: {
        applicationTokenSeconds: Number(row.app_token_validity),
        userTokenSeconds: Number(row.user_token_validity),
        refreshTokenSeconds: Number(row.refresh_token_validity),
      },
      additionalProperties: fromJson(row.additional_properties),
      appOwner: row.app_owner,
      groupId: row.group_id,
      keyManager: row.key_manager,
      ...(row.system_client ? { system: true as const } : {}),
      ...(row.token_endpoint_auth_method === "none" ? { publicClient: true as const } : {}),
      createdAt: toDate(row.created_at),
      updatedAt: toDate(row.updated_at),
    };
  }
}

function settingsColumns(s: ClientSettings) {
  return {
    client_name: s.clientName,
    callback_urls: toJson(s.callbackUrls),
    grant_types: toJson(s.grantTypes),
    scopes: toJson(s.scopes),
    token_type: s.tokenType,
    app_token_validity: s.validity.applicationTokenSeconds,
    user_token_validity: s.validity.userTokenSeconds,
    refresh_token_validity: s.validity.refreshTokenSeconds,
    additional_properties: toJson(s.additionalProperties),
  };
}
