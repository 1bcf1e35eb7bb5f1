import type { Knex } from "knex";
import { normaliseDbError } from "./errors.js";
import { toDate, toMillis } from "./rows.js";
import type { SecretBox } from "./secret-box.js";

/** How a client held by an external key manager is managed there (RFC 7592). */
export interface ClientRegistrationRecord {
  consumerKey: string;
  keyManager: string;
  registrationClientUri: string;
  registrationAccessToken: string;
  createdAt: Date;
  updatedAt: Date;
}

interface RegistrationRow {
  consumer_key: string;
  key_manager: string;
  registration_client_uri: string;
  access_token_ciphertext: string;
  created_at: number | string;
  updated_at: number | string;
}

const TABLE = "client_registrations";

/** Registration access tokens are encrypted on the way in, like consumer secrets. */
export class RegistrationRepository {
  constructor(
    private readonly db: Knex | Knex.Transaction,
    private readonly box: SecretBox,
  ) {}

  async insert(r: ClientRegistrationRecord): Promise<void> {
    try {
      await this.db<RegistrationRow>(TABLE).insert({
        consumer_key: r.consumerKey,
        key_manager: r.keyManager,
        registration_client_uri: r.registrationClientUri,
        access_token_ciphertext: this.box.encrypt(r.registrationAccessToken),
        created_at: toMillis(r.createdAt),
        updated_at: toMillis(r.updatedAt),
      });
    } catch (err) {
      normaliseDbError(err, { duplicate: "the client is already registered", missingReference: "the OAuth client no longer exists" });
    }
  }

  async find(consumerKey: string): Promise<ClientRegistrationRecord | undefined> {
    const row = await this.db<RegistrationRow>(TABLE).where({ consumer_key: consumerKey }).first();
    return row
      ? {
          consumerKey: row.consumer_key,
          keyManager: row.key_manager,
          registrationClientUri: row.registration_client_uri,
          registrationAccessToken: this.box.decrypt(row.access_token_ciphertext),
          createdAt: toDate(row.created_at),
          updatedAt: toDate(row.updated_at),
        }
      : undefined;
  }

  /** The server may rotate the registration access token on update (RFC 7592 section 2.2). */
  async updateAccess(consumerKey: string, uri: string, accessToken: string, updatedAt: Date): Promise<void> {
    await this.db<RegistrationRow>(TABLE)
      .where({ consumer_key: consumerKey })
      .update({ registration_client_uri: uri, access_token_ciphertext: this.box.encrypt(accessToken), updated_at: toMillis(updatedAt) });
  }
}
