import * as http from "node:http";
import * as net from "node:net";
import type { DescService } from "@bufbuild/protobuf";
import { type Client, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { bearer } from "./server.js";

/**
 * Callers on distinct loopback addresses (Linux routes all of 127/8 to lo), so a test can play
 * several network sources against one server.
 */
export interface FormAnswer {
  status: number;
  body: string;
  headers: http.IncomingHttpHeaders;
}

/** An application/x-www-form-urlencoded POST from `localAddress` (one keep-alive agent per address). */
export function postFormFrom(
  agent: http.Agent,
  port: number,
  path: string,
  form: Record<string, string>,
  options: { basic?: { id: string; secret: string }; headers?: Record<string, string> } = {},
): Promise<FormAnswer> {
  const body = new URLSearchParams(form).toString();
  const headers: Record<string, string> = { "content-type": "application/x-www-form-urlencoded", ...options.headers };
  if (options.basic) headers.authorization = `Basic ${Buffer.from(`${options.basic.id}:${options.basic.secret}`).toString("base64")}`;
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, path, method: "POST", headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8"), headers: res.headers }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** A keep-alive agent whose connections leave from `localAddress`. */
export function agentFrom(localAddress: string): http.Agent {
  return new http.Agent({ keepAlive: true, maxSockets: 8, localAddress } as http.AgentOptions);
}

/** A generated client over gRPC whose connection leaves from `localAddress`. */
export function grpcClientFrom<S extends DescService>(service: S, port: number, localAddress: string, token: string): Client<S> {
  return createClient(
    service,
    createGrpcTransport({
      baseUrl: `http://127.0.0.1:${port}`,
      interceptors: [bearer(token)],
      nodeOptions: { createConnection: () => net.connect({ host: "127.0.0.1", port, localAddress }) },
    }),
  );
}
