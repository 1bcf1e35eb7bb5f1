import type { Knex } from "knex";
import { toDate, toMillis } from "./rows.js";
import type { SecretBox } from "./secret-box.js";

export interface StoredSigningKey {
  kid: string;
  alg: "ES256" | "RS256";
  privateJwk: Record<string, unknown>;
  publicJwk: Record<string, unknown>;
  createdAt: Date;
  retiredAt: Date | undefined;
}

interface KeyRow {
  kid: string;
  alg: string;
  private_jwk: string;
  public_jwk: string;
  created_at: number | string;
  retired_at: number | string | null;
}

const TABLE = "signing_keys";

/** JWT signing keys; private halves encrypted at rest. */
export class SigningKeyRepository {
  constructor(
    private readonly db: Knex | Knex.Transaction,
    private readonly box: SecretBox,
  ) {}

  async insert(key: StoredSigningKey): Promise<void> {
    await this.db<KeyRow>(TABLE).insert({
      kid: key.kid,
      alg: key.alg,
      private_jwk: this.box.encrypt(JSON.stringify(key.privateJwk)),
      public_jwk: JSON.stringify(key.publicJwk),
      created_at: toMillis(key.createdAt),
      retired_at: key.retiredAt ? toMillis(key.retiredAt) : null,
    });
  }

  async list(): Promise<StoredSigningKey[]> {
    const rows = await this.db<KeyRow>(TABLE).select().orderBy("created_at", "desc");
    return rows.map((r) => ({
      kid: r.kid,
      alg: r.alg as "ES256" | "RS256",
      privateJwk: JSON.parse(this.box.decrypt(r.private_jwk)),
      publicJwk: JSON.parse(r.public_jwk),
      createdAt: toDate(r.created_at),
      retiredAt: r.retired_at === null ? undefined : toDate(r.retired_at),
    }));
  }

  async retireAll(at: Date): Promise<void> {
    await this.db<KeyRow>(TABLE)
      .whereNull("retired_at")
      .update({ retired_at: toMillis(at) });
  }

  /** Forgets keys retired before `before`: no unexpired token can carry them. */
  async deleteRetiredBefore(before: Date): Promise<void> {
    await this.db<KeyRow>(TABLE).where("retired_at", "<", toMillis(before)).delete();
  }
}
