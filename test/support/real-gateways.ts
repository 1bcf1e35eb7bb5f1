// Real nginx and Caddy (Debian's packages) for the gateway tests: installed with apt-get when
// missing (a failure to install fails the suite, loudly: never skipped), run unprivileged in the
// foreground with the README's example configurations (examples/), on free loopback ports.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as http from "node:http";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

const EXAMPLES = new URL("../../examples/", import.meta.url).pathname;

/** The binary's path, installing its Debian package when it is missing. */
export function ensureInstalled(binary: string, debianPackage: string): string {
  const find = () => {
    try {
      return execFileSync("sh", ["-c", `command -v ${binary}`])
        .toString()
        .trim();
    } catch {
      return "";
    }
  };
  const found = find();
  if (found) return found;
  console.log(`${binary} not found: installing Debian's ${debianPackage}`);
  try {
    execFileSync(
      "sh",
      ["-c", `apt-get install -y ${debianPackage} >/dev/null 2>&1 || (apt-get update >/dev/null 2>&1 && apt-get install -y ${debianPackage} >/dev/null 2>&1)`],
      { env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" }, stdio: "inherit" },
    );
  } catch {
    // reported below
  }
  const installed = find();
  if (!installed)
    throw new Error(`${binary} is required by this test and could not be installed (apt-get install -y ${debianPackage}): the suite cannot pass without it`);
  return installed;
}

/** A loopback port free now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** An example configuration file as the README shows it. */
export function example(path: string): string {
  return readFileSync(join(EXAMPLES, path), "utf8");
}

/** `${NAME}` replaced by its value (envsubst's syntax); every one must be given. */
export function substitute(text: string, values: Record<string, string>): string {
  return text.replace(/\$\{([A-Z_]+)\}/g, (_, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`no value for \${${name}}`);
    return value;
  });
}

export interface RunningGateway {
  port: number;
  stop(): Promise<void>;
}

async function waitForPort(port: number, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`gateway exited (${child.exitCode}): ${output()}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, "127.0.0.1", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`gateway did not listen on ${port}: ${output()}`);
}

function run(command: string, args: string[], port: number, env: NodeJS.ProcessEnv, dir: string): Promise<RunningGateway> {
  const child = spawn(command, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout?.on("data", (d) => {
    output += d;
  });
  child.stderr?.on("data", (d) => {
    output += d;
  });
  const stop = () =>
    new Promise<void>((resolve) => {
      const done = () => {
        rmSync(dir, { recursive: true, force: true });
        resolve();
      };
      if (child.exitCode !== null || child.signalCode !== null) return done();
      child.once("exit", done);
      child.kill("SIGTERM");
      setTimeout(() => child.kill("SIGKILL"), 5000).unref();
    });
  return waitForPort(port, child, () => output).then(
    () => ({ port, stop }),
    async (err) => {
      await stop();
      throw err;
    },
  );
}

export interface GatewayValues {
  kmHttpAddress: string;
  backendAddress: string;
  /** The gateway's own credential: a shared secret (or a km:gateway token). */
  gatewaySecret: string;
}

/** nginx with examples/nginx/nginx.conf, in the foreground, its files in a temporary prefix. */
export async function startNginx(values: GatewayValues): Promise<RunningGateway> {
  const nginx = ensureInstalled("nginx", "nginx-light");
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "km-nginx-"));
  const conf = substitute(example("nginx/nginx.conf"), {
    KM_HTTP_ADDRESS: values.kmHttpAddress,
    BACKEND_ADDRESS: values.backendAddress,
    LISTEN_ADDRESS: `127.0.0.1:${port}`,
    KM_GATEWAY_SECRET: values.gatewaySecret,
  });
  writeFileSync(join(dir, "nginx.conf"), conf);
  return run(
    nginx,
    ["-p", dir, "-c", join(dir, "nginx.conf"), "-e", "stderr", "-g", `daemon off; pid ${join(dir, "nginx.pid")}; error_log stderr warn;`],
    port,
    process.env,
    dir,
  );
}

/**
 * nginx as a plain reverse proxy to the same backend, without auth_request: the baseline the
 * benchmark compares examples/nginx/nginx.conf with.
 */
export async function startPlainNginx(values: GatewayValues): Promise<RunningGateway> {
  const nginx = ensureInstalled("nginx", "nginx-light");
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "km-nginx-plain-"));
  const conf = [
    "worker_processes 1;",
    "events { worker_connections 1024; }",
    "http {",
    "  access_log off;",
    `  upstream api_backend { server ${values.backendAddress}; keepalive 32; }`,
    `  server { listen 127.0.0.1:${port}; location / { proxy_http_version 1.1; proxy_set_header Connection ""; proxy_pass http://api_backend; } }`,
    "}",
  ].join("\n");
  writeFileSync(join(dir, "nginx.conf"), conf);
  return run(
    nginx,
    ["-p", dir, "-c", join(dir, "nginx.conf"), "-e", "stderr", "-g", `daemon off; pid ${join(dir, "nginx.pid")}; error_log stderr warn;`],
    port,
    process.env,
    dir,
  );
}

/** Caddy with examples/caddy/Caddyfile, its values from the environment as the file expects. */
export async function startCaddy(values: GatewayValues): Promise<RunningGateway> {
  const caddy = ensureInstalled("caddy", "caddy");
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "km-caddy-"));
  const file = join(dir, "Caddyfile");
  writeFileSync(file, example("caddy/Caddyfile"));
  const env = {
    ...process.env,
    HOME: dir,
    XDG_CONFIG_HOME: dir,
    XDG_DATA_HOME: dir,
    LISTEN_ADDRESS: `127.0.0.1:${port}`,
    KM_HTTP_ADDRESS: values.kmHttpAddress,
    BACKEND_ADDRESS: values.backendAddress,
    KM_GATEWAY_SECRET: values.gatewaySecret,
  };
  return run(caddy, ["run", "--config", file, "--adapter", "caddyfile"], port, env, dir);
}

export interface SeenRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
}

/** The API behind the gateways: answers 200 and records what reached it. */
export async function startBackend(): Promise<{ address: string; seen: SeenRequest[]; close(): Promise<void> }> {
  const seen: SeenRequest[] = [];
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers });
    req.resume();
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ from: "backend" }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    address: `127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
