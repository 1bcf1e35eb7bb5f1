/** Gateway status codes of WSO2's validateKey: every answer is one of these. */
export const Status = {
  OK: { code: 0, name: "OK" },
  GENERAL_ERROR: { code: 900900, name: "API_AUTH_GENERAL_ERROR" },
  INVALID_CREDENTIALS: { code: 900901, name: "API_AUTH_INVALID_CREDENTIALS" },
  MISSING_CREDENTIALS: { code: 900902, name: "API_AUTH_MISSING_CREDENTIALS" },
  INCORRECT_ACCESS_TOKEN_TYPE: { code: 900905, name: "API_AUTH_INCORRECT_ACCESS_TOKEN_TYPE" },
  INCORRECT_API_RESOURCE: { code: 900906, name: "API_AUTH_INCORRECT_API_RESOURCE" },
  API_BLOCKED: { code: 900907, name: "API_BLOCKED" },
  RESOURCE_FORBIDDEN: { code: 900908, name: "API_AUTH_RESOURCE_FORBIDDEN" },
  SUBSCRIPTION_INACTIVE: { code: 900909, name: "SUBSCRIPTION_INACTIVE" },
  INVALID_SCOPE: { code: 900910, name: "INVALID_SCOPE" },
  KEY_MANAGER_NOT_AVAILABLE: { code: 900912, name: "KEY_MANAGER_NOT_AVAILABLE" },
} as const;

export type ValidationStatus = (typeof Status)[keyof typeof Status];
