/**
 * @keymanager/gateway: a gateway's side of the keymanager service. ValidateToken's answers from
 * a validator that decides in process with @keymanager/core where its live copy allows and asks
 * the server over one pipelined ValidateTokens stream otherwise, and middleware (node:http,
 * Express-style, Fastify) answering WSO2's gateway errors.
 */
export { answerFromDecision, answerFromResponse, type GatewayAnswer } from "./answer.js";
export type { LocalCopy, Revocation } from "./local-copy.js";
export { type GatewayValidatorOptions, gatewayValidatorOptionsSchema } from "./options.js";
export {
  createGatewayValidator,
  GatewayRequestError,
  type GatewayValidator,
  type GatewayValidatorStats,
  type ValidateInput,
  type ValidatorDeps,
} from "./validator.js";
export {
  type ApiRef,
  createGatewayGuard,
  DEFAULT_UPSTREAM_HEADERS,
  type GatewayGuardOptions,
  type GuardedRequest,
  type GuardResult,
  type UpstreamHeaderNames,
} from "./middleware/guard.js";
export { createNodeGuard, gatewayMiddleware, sendRefusal } from "./middleware/node.js";
export { type FastifyGatewayOptions, fastifyGateway } from "./middleware/fastify.js";
