/** What a gateway needs to know about the application that holds a consumer key. */

export const KEY_TYPES = ["PRODUCTION", "SANDBOX"] as const;
export type KeyType = (typeof KEY_TYPES)[number];

/**
 * A consumer key and the application it belongs to (WSO2's application and application key
 * mapping, joined): one per OAuth client an application holds, PRODUCTION or SANDBOX.
 */
export interface KeyMapping {
  consumerKey: string;
  applicationId: string;
  applicationName: string;
  /** The application's throttling tier. */
  applicationTier: string;
  keyType: KeyType;
  /** The application's owner in the store. */
  subscriber: string;
  /** The key manager holding the client ("Resident Key Manager" or an external one's name). */
  keyManager: string;
}
