import { AlreadyExistsError, NotFoundError, PermissionDeniedError } from "../domain/errors.js";
import type { KeyManager } from "../keymanager/key-manager.js";
import { NO_CLIENT } from "../keymanager/key-manager.js";
import { type ApplicationKeyRef, KEY_TYPES, type OAuthApplication } from "../domain/model/index.js";
import { isRestricted, owns, type Principal, splitGroups } from "./principal.js";

/**
 * A store caller sees and changes only applications of its own subscriber or groups. Another's
 * application answers exactly as a missing one does, so its existence does not leak.
 * Callers with the admin scope are not restricted.
 */
export class Ownership {
  constructor(private readonly keyManager: KeyManager) {}

  /** NOT_FOUND unless the caller may see the client with this consumer key. */
  async requireConsumerKey(principal: Principal | undefined, consumerKey: string): Promise<void> {
    if (!isRestricted(principal)) return;
    const app = await this.keyManager.retrieveApplication(consumerKey);
    if (!owns(principal, app.client.appOwner, app.client.groupId)) throw new NotFoundError(NO_CLIENT);
  }

  /** Whether the caller may see the client with this consumer key (false when it does not exist). */
  async maySee(principal: Principal | undefined, consumerKey: string): Promise<boolean> {
    try {
      await this.requireConsumerKey(principal, consumerKey);
      return true;
    } catch (err) {
      if (err instanceof NotFoundError) return false;
      throw err;
    }
  }

  /** The application, or NOT_FOUND with the missing one's message when it is another's. */
  checkApplication(principal: Principal | undefined, app: OAuthApplication, notFound: string): OAuthApplication {
    if (isRestricted(principal) && !owns(principal, app.client.appOwner, app.client.groupId)) throw new NotFoundError(notFound);
    return app;
  }

  /** Whether the caller may use (map, see) a client with this owner and group. */
  mayUse(principal: Principal | undefined, client: { appOwner: string; groupId: string }): boolean {
    return !isRestricted(principal) || owns(principal, client.appOwner, client.groupId);
  }

  /**
   * A store caller may add keys to an application id only if no other subscriber's keys use it
   * (else it could attach keys to another's application). Another's application id answers as
   * one with keys of the type asked, whatever keys it has: ALREADY_EXISTS, nothing more.
   */
  async requireApplicationId(principal: Principal | undefined, ref: ApplicationKeyRef): Promise<void> {
    if (!isRestricted(principal)) return;
    for (const keyType of KEY_TYPES) {
      const app = await this.keyManager.retrieveApplicationByKey({ applicationId: ref.applicationId, keyType }).catch((err: unknown) => {
        if (err instanceof NotFoundError) return undefined;
        throw err;
      });
      if (app && !owns(principal, app.client.appOwner, app.client.groupId)) {
        throw new AlreadyExistsError(`the application already has ${ref.keyType} keys`);
      }
    }
  }

  /**
   * Who may give an application to another owner: admins, and a store caller only for an
   * application its own subscriber owns. One it cannot see answers as a missing one (NOT_FOUND);
   * one it sees through its groups but does not own is PERMISSION_DENIED.
   */
  ownerChange(principal: Principal | undefined): (app: OAuthApplication) => void {
    return (app) => {
      if (!isRestricted(principal)) return;
      if (!owns(principal, app.client.appOwner, app.client.groupId)) throw new NotFoundError(NO_CLIENT);
      if (app.client.appOwner !== principal.subscriber) {
        throw new PermissionDeniedError("only the application's owner may give it to another owner");
      }
    };
  }

  /**
   * The owner and group a new application of this caller gets: its own subscriber when none is
   * given; PERMISSION_DENIED for another subscriber or a group the caller is not in.
   */
  ownerFor<T extends { appOwner: string; groupId: string }>(principal: Principal | undefined, input: T): T {
    if (!isRestricted(principal)) return input;
    if (input.appOwner !== "" && input.appOwner !== principal.subscriber) {
      throw new PermissionDeniedError("app_owner must be the caller's own subscriber");
    }
    const foreign = splitGroups(input.groupId).filter((g) => !principal.groups.includes(g));
    if (foreign.length > 0) throw new PermissionDeniedError("group_id names a group the caller is not in");
    return { ...input, appOwner: principal.subscriber };
  }
}
