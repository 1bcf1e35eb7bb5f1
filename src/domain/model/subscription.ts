/** An application's subscription to an API, with its throttling tier and state. */

export const SUBSCRIPTION_STATES = ["UNBLOCKED", "BLOCKED", "PROD_ONLY_BLOCKED", "ON_HOLD", "REJECTED", "TIER_UPDATE_PENDING"] as const;
export type SubscriptionState = (typeof SUBSCRIPTION_STATES)[number];

export interface Subscription {
  id: string;
  applicationId: string;
  apiId: string;
  tier: string;
  state: SubscriptionState;
  createdAt: Date;
  updatedAt: Date;
}
