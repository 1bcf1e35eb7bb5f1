import type { Clock } from "../domain/clock.js";
import type { OAuthApplication } from "../domain/model/index.js";
import { Validator } from "../domain/validator.js";
import { LOCK } from "../storage/locks.js";
import type { Store } from "../storage/store.js";
import { applicationClient } from "./consumer-secrets.js";
import type { Precondition } from "./key-manager.js";
import { LIMITS } from "./validation.js";

/**
 * updateApplicationOwner: the owner of a client is this service's record whichever key manager
 * holds the client (OAuth2 registration has no owner), so every key manager changes it here.
 * `precondition` sees the application under the change's lock (who may move it is decided on
 * what it is at that moment, not on an earlier read). Recorded as a change of the application:
 * gateways' copies (Watch) get the key mapping with its new owner.
 */
export async function changeOwner(store: Store, clock: Clock, consumerKey: string, owner: string, precondition?: Precondition): Promise<OAuthApplication> {
  const v = new Validator();
  v.text("app_owner", owner, LIMITS.name);
  v.throwIfInvalid();
  return store.transaction(async (s) => {
    const current = await applicationClient(s, consumerKey, LOCK);
    const mapping = await s.applicationKeys.findByConsumerKey(consumerKey);
    precondition?.({ client: current, mapping });
    const now = clock.now();
    await s.clients.updateOwner(consumerKey, owner, now);
    await s.applicationKeys.touch(consumerKey, now);
    s.changed({ kind: "application", consumerKey });
    return { client: { ...current, appOwner: owner, updatedAt: now }, mapping: await s.applicationKeys.findByConsumerKey(consumerKey) };
  });
}
