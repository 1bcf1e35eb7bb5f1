import { type ConnectError, createContextKey } from "@connectrpc/connect";
import { encodeEnvelope, type UniversalHandler, type UniversalServerRequest, type UniversalServerResponse } from "@connectrpc/connect/protocol";
import { codeToHttpStatus, endStreamFlag, endStreamToJson, errorToJsonBytes } from "@connectrpc/connect/protocol-connect";
import { setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { trailerFlag, trailerSerialize } from "@connectrpc/connect/protocol-grpc-web";

/** How an RPC on the HTTP port ended, for the metrics and the access log: set by whoever answers an error. */
export interface RpcOutcome {
  /** The Connect/gRPC code; 0 until an error is answered. */
  code: number;
}

export const RPC_OUTCOME = createContextKey<RpcOutcome | undefined>(undefined, { description: "rpc outcome" });

/**
 * An error answered on the HTTP port before connect-es sees the request (the caller not
 * authenticated, a body that does not decode), in the request's own protocol: Connect unary (JSON
 * body, HTTP status by code), Connect streaming (an end-of-stream message), gRPC-Web (a trailer
 * frame) or gRPC (trailers-only).
 */
export function errorResponse(req: UniversalServerRequest, error: ConnectError): UniversalServerResponse {
  const outcome = req.contextValues?.get(RPC_OUTCOME);
  if (outcome) outcome.code = error.code;
  const type = (req.header.get("content-type") ?? "").toLowerCase().split(";")[0]?.trim() ?? "";
  if (type.startsWith("application/grpc-web")) {
    const trailer = new Headers();
    setTrailerStatus(trailer, error);
    return { status: 200, header: new Headers({ "content-type": type }), body: once(encodeEnvelope(trailerFlag, trailerSerialize(trailer))) };
  }
  if (type.startsWith("application/connect+")) {
    // A Connect streaming call: its error comes as the end-of-stream message of a 200 answer.
    const end = new TextEncoder().encode(JSON.stringify(endStreamToJson(error.metadata, error, {})));
    return { status: 200, header: new Headers({ "content-type": type }), body: once(encodeEnvelope(endStreamFlag, end)) };
  }
  if (type.startsWith("application/grpc")) {
    const header = new Headers({ "content-type": type });
    setTrailerStatus(header, error);
    return { status: 200, header };
  }
  return {
    status: codeToHttpStatus(error.code),
    header: new Headers({ "content-type": "application/json" }),
    body: once(errorToJsonBytes(error, {})),
  };
}

async function* once(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  yield bytes;
}

/** `fn` in `handler`'s place, keeping what connect-node's adapter reads of a handler (path, method, protocols). */
export function wrapHandler(handler: UniversalHandler, fn: (req: UniversalServerRequest) => Promise<UniversalServerResponse>): UniversalHandler {
  return Object.assign(fn, {
    protocolNames: handler.protocolNames,
    supportedContentType: handler.supportedContentType,
    allowedMethods: handler.allowedMethods,
    requestPath: handler.requestPath,
    service: handler.service,
    method: handler.method,
  });
}
