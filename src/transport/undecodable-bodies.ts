import type { DescMessage } from "@bufbuild/protobuf";
import { fromBinary } from "@bufbuild/protobuf";
import { base64Decode } from "@bufbuild/protobuf/wire";
import { Code, ConnectError } from "@connectrpc/connect";
import { compressionBrotli, compressionGzip } from "@connectrpc/connect-node";
import type { Compression, UniversalHandler, UniversalServerRequest, UniversalServerResponse } from "@connectrpc/connect/protocol";
import type { Logger } from "pino";
import { errorResponse, wrapHandler } from "./universal-handler.js";

/**
 * connect-es (2.x) answers a binary body that does not decode with INTERNAL ("parse binary: ..."),
 * before any interceptor runs, where it answers INVALID_ARGUMENT for JSON. A caller's mistake
 * must not read as the server's: this wrapper decodes binary request bodies of the HTTP port
 * itself (Connect `application/proto` POST and GET, gRPC-Web) and answers INVALID_ARGUMENT in the
 * caller's protocol when they do not decode, with the gRPC port's wording. Everything else (JSON,
 * broken framing, oversized bodies, unknown compression) goes to connect-es unchanged, which
 * answers those correctly; the body it reads is the one read here.
 */
export function rejectUndecodableBodies(handler: UniversalHandler, readMaxBytes: number, logger?: Pick<Logger, "info">): UniversalHandler {
  const input = handler.method.input;
  const invalid = (req: UniversalServerRequest, problem: string): UniversalServerResponse => {
    logger?.info({ rpc: handler.requestPath, method: req.method, problem }, "undecodable request refused");
    return errorResponse(req, new ConnectError(problem, Code.InvalidArgument));
  };
  const wrapped = async (req: UniversalServerRequest): Promise<UniversalServerResponse> => {
    if (req.method === "GET") {
      const query = new URL(req.url).searchParams;
      // connect-es lets a bad base64 message through to a 500 (any encoding): the caller's mistake.
      if (query.get("base64") === "1" && !isBase64(query.get("message") ?? "")) return invalid(req, "message: is not valid base64");
      if (query.get("encoding") !== "proto") return handler(req);
      const problem = await undecodableQueryMessage(input, query, readMaxBytes);
      return problem === undefined ? handler(req) : invalid(req, problem);
    }
    const format = binaryFormat(req);
    if (format === undefined) return handler(req);
    const body = await readBody(req.body as AsyncIterable<Uint8Array>, readMaxBytes);
    const replay: UniversalServerRequest = { ...req, body: once(body) };
    if (body.byteLength > readMaxBytes) return handler(replay);
    if (format === "connect") {
      const bytes = await decompress(compressionOf(req.header.get("content-encoding")), body, readMaxBytes);
      const problem = bytes && undecodable(input, bytes);
      return problem === undefined ? handler(replay) : invalid(req, problem);
    }
    const problem = await undecodableEnvelope(input, body, compressionOf(req.header.get("grpc-encoding")), readMaxBytes);
    return problem === undefined ? handler(replay) : invalid(req, problem);
  };
  return wrapHandler(handler, wrapped);
}

/** The binary protocol of a POST: Connect unary or gRPC-Web. */
function binaryFormat(req: UniversalServerRequest): "connect" | "grpc-web" | undefined {
  if (req.method !== "POST") return undefined;
  const type = (req.header.get("content-type") ?? "").toLowerCase().split(";")[0]?.trim();
  if (type === "application/proto") return "connect";
  if (type === "application/grpc-web" || type === "application/grpc-web+proto") return "grpc-web";
  return undefined;
}

function undecodable(schema: DescMessage, bytes: Uint8Array): string | undefined {
  try {
    fromBinary(schema, bytes);
    return undefined;
  } catch (err) {
    return `cannot decode message ${schema.typeName} from binary: ${err instanceof Error ? err.message : String(err)}`;
  }
}

async function undecodableQueryMessage(schema: DescMessage, query: URLSearchParams, readMaxBytes: number): Promise<string | undefined> {
  const message = query.get("message") ?? "";
  let bytes: Uint8Array;
  try {
    bytes = query.get("base64") === "1" ? base64Decode(message) : new TextEncoder().encode(message);
  } catch {
    return undefined; // connect-es reports a malformed query itself
  }
  const plain = await decompress(compressionOf(query.get("compression")), bytes, readMaxBytes);
  return plain && undecodable(schema, plain);
}

/** The one message of a unary gRPC-Web request; undefined when the framing itself is off. */
async function undecodableEnvelope(
  schema: DescMessage,
  body: Uint8Array,
  compression: Compression | null | undefined,
  readMaxBytes: number,
): Promise<string | undefined> {
  if (body.byteLength < 5) return undefined;
  const flags = body[0] ?? 0;
  const length = new DataView(body.buffer, body.byteOffset, body.byteLength).getUint32(1);
  if (body.byteLength !== 5 + length || (flags & ~1) !== 0) return undefined;
  const payload = body.subarray(5);
  const bytes = (flags & 1) === 1 ? await decompress(compression, payload, readMaxBytes) : payload;
  return bytes && undecodable(schema, bytes);
}

const COMPRESSIONS: readonly Compression[] = [compressionGzip, compressionBrotli];

/** null: identity; undefined: a compression this check does not know (connect-es decides). */
function compressionOf(name: string | null): Compression | null | undefined {
  if (name === null || name === "" || name === "identity") return null;
  return COMPRESSIONS.find((c) => c.name === name);
}

async function decompress(compression: Compression | null | undefined, bytes: Uint8Array, readMaxBytes: number): Promise<Uint8Array | undefined> {
  if (compression === null) return bytes;
  if (compression === undefined) return undefined;
  try {
    return await compression.decompress(bytes, readMaxBytes);
  } catch {
    return undefined; // connect-es answers a broken or oversized compressed body
  }
}

/** The body, or its first readMaxBytes + 1 bytes and whatever chunk crossed that line. */
async function readBody(body: AsyncIterable<Uint8Array>, readMaxBytes: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of body) {
    chunks.push(chunk);
    size += chunk.byteLength;
    if (size > readMaxBytes) break;
  }
  return Buffer.concat(chunks, size);
}

async function* once(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  yield bytes;
}

function isBase64(text: string): boolean {
  try {
    base64Decode(text);
    return true;
  } catch {
    return false;
  }
}
