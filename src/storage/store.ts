import type { Knex } from "knex";
import type { ChangeEvents, LoggableChange, LoggedChange } from "../domain/change-events.js";
import { describeChange } from "./change-details.js";
import { ChangeLogRepository } from "./change-log-repository.js";
import { GatewayViewRepository } from "./gateway-view-repository.js";
import { ApplicationKeyRepository } from "./application-key-repository.js";
import { ClientRepository } from "./client-repository.js";
import { ConsumerSecretRepository } from "./consumer-secret-repository.js";
import { isDeadlock } from "./errors.js";
import { ApiRepository } from "./api-repository.js";
import { RegistrationRepository } from "./registration-repository.js";
import { ResourceRepository } from "./resource-repository.js";
import { ScopeRepository } from "./scope-repository.js";
import type { SecretBox } from "./secret-box.js";
import { SigningKeyRepository } from "./signing-key-repository.js";
import { SubscriptionRepository } from "./subscription-repository.js";
import { TokenRepository } from "./token-repository.js";
import { TokenRevocationRepository } from "./token-revocation-repository.js";
import { TrustedIssuerRepository } from "./trusted-issuer-repository.js";
import { UserRepository } from "./user-repository.js";
import { AuthorizationCodeRepository } from "./authorization-code-repository.js";
import { ConsentRepository } from "./consent-repository.js";
import { LoginSessionRepository } from "./login-session-repository.js";

const DEADLOCK_ATTEMPTS = 5;

export interface StoreOptions {
  /**
   * The longest a token may be issued for (ms; validity.max_token): a revocation by consumer key
   * or end user is kept at least this long after it (tokens deleted with their client included).
   */
  tokenHorizonMs?: () => number;
}

/** The repositories over one connection or transaction. */
export class Store {
  readonly clients: ClientRepository;
  readonly consumerSecrets: ConsumerSecretRepository;
  readonly applicationKeys: ApplicationKeyRepository;
  readonly resources: ResourceRepository;
  readonly tokens: TokenRepository;
  readonly users: UserRepository;
  readonly apis: ApiRepository;
  readonly subscriptions: SubscriptionRepository;
  readonly signingKeys: SigningKeyRepository;
  readonly registrations: RegistrationRepository;
  readonly changeLog: ChangeLogRepository;
  readonly gatewayView: GatewayViewRepository;
  readonly tokenRevocations: TokenRevocationRepository;
  readonly authorizationCodes: AuthorizationCodeRepository;
  readonly loginSessions: LoginSessionRepository;
  readonly consents: ConsentRepository;
  readonly trustedIssuers: TrustedIssuerRepository;
  readonly scopes: ScopeRepository;

  /**
   * `events` hears of every change committed through this store (change log entries), once
   * committed. `recording` collects the changes of the transaction this store works in.
   */
  constructor(
    private readonly db: Knex | Knex.Transaction,
    private readonly box: SecretBox,
    private readonly events?: ChangeEvents,
    private readonly recording?: LoggableChange[],
    private readonly options: StoreOptions = {},
  ) {
    this.clients = new ClientRepository(db, box);
    this.consumerSecrets = new ConsumerSecretRepository(db);
    this.applicationKeys = new ApplicationKeyRepository(db);
    this.resources = new ResourceRepository(db);
    this.tokens = new TokenRepository(db);
    this.users = new UserRepository(db);
    this.apis = new ApiRepository(db);
    this.subscriptions = new SubscriptionRepository(db);
    this.signingKeys = new SigningKeyRepository(db, box);
    this.registrations = new RegistrationRepository(db, box);
    this.changeLog = new ChangeLogRepository(db);
    this.gatewayView = new GatewayViewRepository(db);
    this.tokenRevocations = new TokenRevocationRepository(db);
    this.authorizationCodes = new AuthorizationCodeRepository(db);
    this.loginSessions = new LoginSessionRepository(db);
    this.consents = new ConsentRepository(db);
    this.trustedIssuers = new TrustedIssuerRepository(db);
    this.scopes = new ScopeRepository(db);
  }

  /**
   * Records a change of this transaction: it goes into the change log in the same transaction
   * (last, when `work` is done), and to `events` once committed. Only inside `transaction`.
   */
  changed(change: LoggableChange): void {
    if (!this.recording) throw new Error("changes are recorded inside store.transaction");
    this.recording.push(change);
  }

  /**
   * Runs `work` in one transaction: all of its writes happen, or none. A transaction the database
   * rolled back whole to break a deadlock (two writers locking rows in opposite orders; InnoDB's
   * gap locks make it likelier on MariaDB) runs again, up to DEADLOCK_ATTEMPTS times; so `work`
   * does database work only. Nested in a transaction, the outermost one runs again instead.
   */
  async transaction<T>(work: (store: Store) => Promise<T>): Promise<T> {
    // Nested: a savepoint whose changes are the outer transaction's.
    if (this.db.isTransaction) return this.db.transaction((trx) => work(new Store(trx, this.box, this.events, this.recording, this.options)));
    let logged: LoggedChange[] = [];
    const result = await againAfterDeadlocks(() =>
      this.db.transaction(async (trx) => {
        const recording: LoggableChange[] = [];
        const store = new Store(trx, this.box, this.events, recording, this.options);
        const value = await work(store);
        logged = await store.log(recording);
        return value;
      }),
    );
    this.events?.committed(logged);
    return result;
  }

  /**
   * The recorded changes, once each, with the state they left, into the change log; revocations by
   * consumer key or end user also into token_revocations (after the head is locked: in turn).
   */
  private async log(recording: LoggableChange[]): Promise<LoggedChange[]> {
    if (recording.length === 0) return [];
    const changes = [...new Map(recording.map((c) => [JSON.stringify(c), c])).values()];
    const horizonMs = this.options.tokenHorizonMs?.() ?? 0;
    // A revocation's time is taken before its details are read (tokens issued later are not
    // refused by it); the commit's once they are, as near the commit as the log allows.
    const described = Date.now();
    const entries = [];
    for (const change of changes) entries.push({ change, detail: await describeChange(this.gatewayView, change, described, horizonMs) });
    const at = Date.now();
    const logged = await this.changeLog.append(entries, at, this.events?.replica);
    for (const { detail } of entries) {
      if (detail.kind !== "tokens") continue;
      const keepUntil = detail.keepUntil ?? detail.at + horizonMs;
      if (detail.consumerKey !== undefined)
        await this.tokenRevocations.record({ kind: "consumer_key", subject: detail.consumerKey, revokedAt: detail.at, keepUntil });
      if (detail.endUser !== undefined) await this.tokenRevocations.record({ kind: "end_user", subject: detail.endUser, revokedAt: detail.at, keepUntil });
    }
    return logged;
  }
}

/**
 * Runs `run` (one transaction, or one statement: its own transaction) again when the database
 * rolled it back to break a deadlock, up to DEADLOCK_ATTEMPTS times.
 */
export async function againAfterDeadlocks<T>(run: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (err) {
      if (!isDeadlock(err) || attempt >= DEADLOCK_ATTEMPTS) throw err;
      // A short random pause, longer each time, so the transactions that met do not meet again.
      await new Promise((resolve) => setTimeout(resolve, attempt * (5 + Math.random() * 20)));
    }
  }
}
