import type { ServiceImpl } from "@connectrpc/connect";
import type { HeaderValue } from "../../gen/envoy/config/core/v3/base_pb.js";
import { HeaderValueOption_HeaderAppendAction } from "../../gen/envoy/config/core/v3/base_pb.js";
import type { Authorization, CheckRequest } from "../../gen/envoy/service/auth/v3/external_auth_pb.js";
import { Validator } from "../domain/validator.js";
import type { GatewayAnswer, GatewayCheck, GatewayRequest } from "../gateway/gateway-check.js";

type Impl = ServiceImpl<typeof Authorization>;

/** context_extensions key naming the API version (set per route in Envoy's configuration). */
export const VERSION_EXTENSION = "version";

/** google.rpc.Code of each kind of answer. */
const RPC_CODE = { ok: 0, permissionDenied: 7, internal: 13, unavailable: 14, unauthenticated: 16 } as const;

/**
 * envoy.service.auth.v3.Authorization: Envoy's external authorization (ext_authz, gRPC mode), and
 * so Istio's, Envoy Gateway's, Gloo's, Contour's and Emissary's. The gateway check of the HTTP
 * request in the CheckRequest (gateway/gateway-check.ts); an allowed request goes on with the
 * upstream headers, a refused one gets WSO2's gateway error from Envoy.
 */
export class ExtAuthzServiceImpl implements Impl {
  // Answers mapped from a cached decision are the same objects: their messages (and, on the gRPC
  // port, their encoded bytes) are built once.
  private readonly messages = new WeakMap<GatewayAnswer, ReturnType<typeof responseOf>>();

  constructor(private readonly gateway: GatewayCheck) {}

  // Not async: an answer from the cache goes back without a trip through the microtask queue.
  check(req: CheckRequest) {
    const answer = this.gateway.check(gatewayRequest(req));
    return answer instanceof Promise ? answer.then((a) => this.toMessage(a)) : this.toMessage(answer);
  }

  private toMessage(answer: GatewayAnswer) {
    let message = this.messages.get(answer);
    if (!message) {
      message = responseOf(answer);
      this.messages.set(answer, message);
    }
    return message;
  }
}

/** The HTTP request of a CheckRequest, as Envoy sends it: `headers` (lower-case names) or `header_map`. */
function gatewayRequest(req: CheckRequest): GatewayRequest {
  const http = req.attributes?.request?.http;
  const v = new Validator();
  if (!http) v.add("attributes.request.http", "is required: the HTTP request to check");
  else if (http.method === "") v.add("attributes.request.http.method", "is required");
  const headers = http ? headerLookup(http.headers, http.headerMap?.headers ?? []) : () => undefined;
  const path = http?.path || headers(":path") || "";
  if (http && path === "") v.add("attributes.request.http.path", "is required");
  v.throwIfInvalid();
  return {
    method: http?.method ?? "",
    path,
    header: headers,
    version: req.attributes?.contextExtensions[VERSION_EXTENSION] || undefined,
  };
}

function headerLookup(map: { [key: string]: string }, list: readonly HeaderValue[]): (name: string) => string | undefined {
  if (list.length === 0) return (name) => map[name];
  const decoder = new TextDecoder();
  return (name) => {
    const found = list.find((h) => h.key.toLowerCase() === name);
    if (!found) return undefined;
    return found.value !== "" ? found.value : decoder.decode(found.rawValue);
  };
}

function responseOf(answer: GatewayAnswer) {
  const dynamicMetadata = { ...answer.facts };
  const refusal = answer.refusal;
  if (!refusal) {
    return {
      status: { code: RPC_CODE.ok, message: "", details: [] },
      httpResponse: {
        case: "okResponse" as const,
        value: {
          // Overwrite: a value the API caller sent under one of these names never reaches the upstream.
          headers: answer.upstream.map(([key, value]) => header(key, value)),
          headersToRemove: [...answer.remove],
        },
      },
      dynamicMetadata,
    };
  }
  return {
    status: { code: rpcCode(refusal.status), message: refusal.body.message, details: [] },
    httpResponse: {
      case: "deniedResponse" as const,
      value: {
        status: { code: refusal.status },
        headers: Object.entries(refusal.headers).map(([key, value]) => header(key, value)),
        body: JSON.stringify(refusal.body),
      },
    },
    dynamicMetadata,
  };
}

function header(key: string, value: string) {
  return { header: { key, value }, appendAction: HeaderValueOption_HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD };
}

function rpcCode(httpStatus: number): number {
  switch (httpStatus) {
    case 401:
      return RPC_CODE.unauthenticated;
    case 503:
      return RPC_CODE.unavailable;
    case 500:
      return RPC_CODE.internal;
    default:
      return RPC_CODE.permissionDenied;
  }
}
