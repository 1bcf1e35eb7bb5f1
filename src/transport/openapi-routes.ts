import { sendJson, type RouteHandler } from "./http-server.js";
import { oauth2OpenApi } from "./openapi/oauth2.js";
import { storeOpenApi } from "./openapi/store.js";

const DOCUMENTS: Record<string, string> = {
  "/openapi/store.json": JSON.stringify(storeOpenApi),
  "/openapi/oauth2.json": JSON.stringify(oauth2OpenApi),
};

/** The OpenAPI 3.1 documents of the Store REST API and the OAuth2 endpoints, open to all (GET). */
export function openApiRoutes(): RouteHandler {
  return async (req, res) => {
    const path = (req.url ?? "").split("?")[0] ?? "";
    const document = DOCUMENTS[path];
    if (document === undefined) return false;
    if (req.method !== "GET" && req.method !== "HEAD") {
      sendJson(res, 405, { code: 405, message: "Method Not Allowed", description: "use GET" }, { allow: "GET, HEAD" });
      return true;
    }
    res.writeHead(200, { "content-type": "application/json", "cache-control": "public, max-age=300" });
    res.end(req.method === "HEAD" ? undefined : document);
    return true;
  };
}
