/** An application's subscription to an API. */

export const SUBSCRIPTION_STATES = ["UNBLOCKED", "BLOCKED", "PROD_ONLY_BLOCKED", "ON_HOLD", "REJECTED", "TIER_UPDATE_PENDING"] as const;
export type SubscriptionState = (typeof SUBSCRIPTION_STATES)[number];

export interface Subscription {
  id: string;
  applicationId: string;
  apiId: string;
  /** The subscription's throttling tier ("Unlimited", "Gold", ...). */
  tier: string;
  state: SubscriptionState;
}
