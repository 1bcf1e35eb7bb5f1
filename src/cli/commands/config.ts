// km config ...: the running server's configuration, a file checked offline, a reload; km health.
import { create, toJson } from "@bufbuild/protobuf";
import { KeyManagerService } from "../../../gen/keymanager/v1/key_manager_service_pb.js";
import { KeyManagerConfigurationSchema } from "../../../gen/keymanager/v1/types_pb.js";
import { ConfigError, loadConfig } from "../../config/load.js";
import { configurationToPb } from "../../services/configuration-mapping.js";
import { Answer, type Command, type CommandGroup, UsageError } from "../command.js";
import { rpcCommand } from "../rpc.js";

export const config: CommandGroup = {
  summary: "configuration: show (the server's), check (a file, offline), reload",
  commands: {
    show: rpcCommand(KeyManagerService, "GetKeyManagerConfiguration", {
      summary: "the running server's effective configuration (secrets as ***)",
    }),
    check: {
      summary: "check a deployment file without a server: the configuration it gives, or every problem (exit code 1)",
      positionals: "<file>",
      details: "KM_* variables of the environment apply over the file, as they would on the server.",
      offline: true,
      async run(input, context) {
        const [file, ...rest] = input.positionals;
        if (!file || rest.length > 0) throw new UsageError("give one file");
        try {
          const loaded = loadConfig({ file, env: context.env });
          const configuration = create(KeyManagerConfigurationSchema, configurationToPb(loaded, { sourceFile: file, loadTime: new Date() }));
          return { valid: true, configuration: toJson(KeyManagerConfigurationSchema, configuration) };
        } catch (err) {
          if (err instanceof ConfigError) return new Answer({ valid: false, source: err.source, problems: err.problems }, 1);
          throw err;
        }
      },
    },
    reload: rpcCommand(KeyManagerService, "LoadConfiguration", {
      summary: "make the server read its file again; restartRequired names settings that wait for a restart",
    }),
  },
};

export const health: Command = {
  summary: "whether the server is serving (GET /healthz, no token); exit code 1 when it is not",
  async run(_input, context) {
    const res = await context.http("/healthz", { authenticated: false });
    const body = (await res.json()) as { status?: string };
    return new Answer(body, res.status === 200 ? 0 : 1);
  },
};
