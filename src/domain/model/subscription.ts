/** An application's subscription to an API, with its throttling tier and state. */
import type * as core from "@keymanager/core";

export { SUBSCRIPTION_STATES, type SubscriptionState } from "@keymanager/core";

/** A subscription as stored: what gateways know of it (@keymanager/core), and when it changed. */
export interface Subscription extends core.Subscription {
  createdAt: Date;
  updatedAt: Date;
}
