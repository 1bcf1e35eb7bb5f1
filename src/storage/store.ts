import type { Knex } from "knex";
import { ApplicationKeyRepository } from "./application-key-repository.js";
import { ClientRepository } from "./client-repository.js";
import { ResourceRepository } from "./resource-repository.js";
import type { SecretBox } from "./secret-box.js";

/** The repositories over one connection or transaction. */
export class Store {
  readonly clients: ClientRepository;
  readonly applicationKeys: ApplicationKeyRepository;
  readonly resources: ResourceRepository;

  constructor(
    private readonly db: Knex | Knex.Transaction,
    private readonly box: SecretBox,
  ) {
    this.clients = new ClientRepository(db, box);
    this.applicationKeys = new ApplicationKeyRepository(db);
    this.resources = new ResourceRepository(db);
  }

  /** Runs `work` in one transaction: all of its writes happen, or none. */
  transaction<T>(work: (store: Store) => Promise<T>): Promise<T> {
    return this.db.transaction((trx) => work(new Store(trx, this.box)));
  }
}
