import type { FastifyInstance, FastifyRequest } from "fastify";
import { createGatewayGuard, type GatewayGuardOptions } from "./guard.js";

export type FastifyGatewayOptions = GatewayGuardOptions<FastifyRequest>;

/**
 * A Fastify plugin: an onRequest hook that checks each request of the context it is registered
 * in (it is not encapsulated, like plugins wrapped in fastify-plugin: register it beside the
 * routes or the proxy it guards). Refused calls get WSO2's gateway error; allowed ones go on
 * with the upstream headers set on request.headers (which @fastify/http-proxy passes on), and
 * `request.gatewayAnswer` set.
 */
async function fastifyGatewayPlugin(fastify: FastifyInstance, options: FastifyGatewayOptions): Promise<void> {
  const guard = createGatewayGuard(options);
  fastify.decorateRequest("gatewayAnswer", undefined);
  fastify.addHook("onRequest", async (request, reply) => {
    const result = await guard(request);
    if (result.allowed) {
      (request as FastifyRequest & { gatewayAnswer?: unknown }).gatewayAnswer = result.answer;
      return;
    }
    return reply.code(result.refusal.status).headers(result.refusal.headers).send(result.refusal.body);
  });
}

export const fastifyGateway = Object.assign(fastifyGatewayPlugin, {
  // What fastify-plugin sets: the hook applies to the context the plugin is registered in.
  [Symbol.for("skip-override")]: true,
  [Symbol.for("fastify.display-name")]: "@keymanager/gateway",
});
