import * as http from "node:http";
import { sendJson, serveMetrics } from "../transport/http-server.js";
import type { Metrics } from "./metrics.js";

/** The metrics' own listener ([metrics] port): GET /metrics, nothing else. */
export function createMetricsServer(metrics: Metrics): http.Server {
  return http.createServer((req, res) => {
    serveMetrics(req, res, metrics).then(
      (served) => {
        if (!served) sendJson(res, 404, { code: 404, message: "Not Found", description: "no such endpoint" });
      },
      () => res.destroy(),
    );
  });
}
