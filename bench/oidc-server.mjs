// oidc-provider (in-memory) as the comparison: its own tokens, its own introspection.
import Provider from "oidc-provider";

const port = Number(process.argv[2] ?? 0);
const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{ client_id: "bench", client_secret: "bench-secret-0123456789", grant_types: ["client_credentials"], redirect_uris: [], response_types: [] }],
  features: { clientCredentials: { enabled: true }, introspection: { enabled: true }, revocation: { enabled: true }, devInteractions: { enabled: false } },
});
provider.on("server_error", () => {});
const server = provider.listen(port, "127.0.0.1", () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
