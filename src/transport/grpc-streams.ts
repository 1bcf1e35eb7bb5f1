import { once } from "node:events";
import type { DescMethod } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import type { CallCredentials } from "../auth/call-authorizer.js";
import type { Principal } from "../auth/principal.js";

export interface BidiStreamHandlerOptions {
  method: DescMethod;
  authorize: (credentials: CallCredentials) => Principal | Promise<Principal>;
  clientCertificates: boolean;
  /** Ends the call with the status of `err` (error-mapping.ts). */
  fail: (call: grpc.ServerDuplexStream<unknown, unknown>, err: unknown) => void;
  /** The service's answers to the call's requests; called once the caller is authorized. */
  open: (call: grpc.ServerDuplexStream<unknown, unknown>, principal: Principal) => AsyncIterable<unknown>;
}

/**
 * A bidi-streaming grpc-js handler: the caller is authenticated from the call's metadata before
 * any message is read (an unauthorized caller is answered at once, its messages never decoded),
 * then the service's answers are written as they come, each write waiting for the peer when
 * grpc-js's buffer is full, and the call ends OK when the answers end.
 */
export function bidiStreamHandler(options: BidiStreamHandlerOptions): grpc.handleBidiStreamingCall<unknown, unknown> {
  return (call) => {
    let principal: Principal | Promise<Principal>;
    try {
      principal = options.authorize({
        authorization: call.metadata.get("authorization")[0] as string | undefined,
        certificate: options.clientCertificates ? () => call.getAuthContext().sslPeerCertificate : undefined,
      });
    } catch (err) {
      options.fail(call, err);
      return;
    }
    Promise.resolve(principal)
      .then((p) => write(call, options.open(call, p)))
      .then(
        () => {
          if (!call.cancelled) call.end();
        },
        (err: unknown) => {
          if (!call.cancelled) options.fail(call, err);
        },
      );
  };
}

export interface ServerStreamHandlerOptions {
  authorize: (credentials: CallCredentials) => Principal | Promise<Principal>;
  clientCertificates: boolean;
  /** Ends the call with the status of `err` (error-mapping.ts). */
  fail: (call: grpc.ServerWritableStream<unknown, unknown>, err: unknown) => void;
  /** The service's answers to the call's request (its bytes); called once the caller is authorized. */
  open: (call: grpc.ServerWritableStream<unknown, unknown>, principal: Principal) => AsyncIterable<unknown>;
}

/**
 * A server-streaming grpc-js handler (GatewaySyncService.Watch): as bidiStreamHandler, the caller
 * authenticated before its request is decoded, each write waiting for the peer when grpc-js's
 * buffer is full, so the service produces no faster than the peer reads.
 */
export function serverStreamHandler(options: ServerStreamHandlerOptions): grpc.handleServerStreamingCall<unknown, unknown> {
  return (call) => {
    let principal: Principal | Promise<Principal>;
    try {
      principal = options.authorize({
        authorization: call.metadata.get("authorization")[0] as string | undefined,
        certificate: options.clientCertificates ? () => call.getAuthContext().sslPeerCertificate : undefined,
      });
    } catch (err) {
      options.fail(call, err);
      return;
    }
    Promise.resolve(principal)
      .then((p) => write(call, options.open(call, p)))
      .then(
        () => {
          if (!call.cancelled) call.end();
        },
        (err: unknown) => {
          if (!call.cancelled) options.fail(call, err);
        },
      );
  };
}

async function write(
  call: grpc.ServerDuplexStream<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>,
  answers: AsyncIterable<unknown>,
): Promise<void> {
  const iterator = answers[Symbol.asyncIterator]();
  const cancelled = new Promise<"cancelled">((resolve) => {
    if (call.cancelled) resolve("cancelled");
    else call.once("cancelled", () => resolve("cancelled"));
  });
  try {
    while (!call.cancelled) {
      const next = await iterator.next();
      if (next.done || call.cancelled) return;
      if (!call.write(next.value)) await Promise.race([once(call, "drain"), cancelled]);
    }
  } finally {
    // Cancelled: stop the service reading and answering.
    void iterator.return?.()?.catch(() => {});
  }
}
