// A sample upstream for examples/gateway: answers every request with what it received (method,
// path and headers), so the key manager's x-* headers can be seen.
//
//   PORT=9000 npx tsx examples/gateway/backend.ts
import * as http from "node:http";
import type { AddressInfo } from "node:net";

export function backend(): http.Server {
  return http.createServer((req, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ method: req.method, path: req.url, headers: req.headers }));
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const server = backend();
  server.listen(Number(process.env.PORT ?? 9000), "127.0.0.1", () => console.log(JSON.stringify({ listening: (server.address() as AddressInfo).port })));
}
