/**
 * The domain model: plain values every layer may depend on (services map proto messages to
 * them, repositories store them, the domain works with them). No proto, knex or HTTP here.
 */
export * from "./api.js";
export * from "./application.js";
export * from "./authorization.js";
export * from "./subscription.js";
export * from "./token.js";
export * from "./user.js";
export * from "./trusted-issuer.js";
export * from "./scope.js";
