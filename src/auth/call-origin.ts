import { createContextKey, type HandlerContext } from "@connectrpc/connect";

/** Where a call comes from, worked out only when asked (the gateway's hot path never asks). */
export interface CallOrigin {
  /** The caller's network address as the authentication throttle counts it (transport/client-address.ts). */
  address(): string;
}

/** Set by the transports on every call. */
export const CALL_ORIGIN = createContextKey<CallOrigin | undefined>(undefined, { description: "call origin" });

/** The address a call comes from; "unknown" when the transport could not tell. */
export function callerAddress(ctx: Pick<HandlerContext, "values">): string {
  return ctx.values.get(CALL_ORIGIN)?.address() ?? "unknown";
}
