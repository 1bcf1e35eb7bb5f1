import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { SystemClientService } from "../../gen/keymanager/v1/system_client_service_pb.js";
import type { SystemClient, SystemClients } from "../auth/system-clients.js";

type Impl = ServiceImpl<typeof SystemClientService>;

/** keymanager.v1.SystemClientService: the callers of this service (admin scope). */
export class SystemClientServiceImpl implements Impl {
  constructor(private readonly clients: SystemClients) {}

  async createSystemClient(req: Parameters<Impl["createSystemClient"]>[0]) {
    const { client, clientSecret } = await this.clients.create({ name: req.name, scopes: req.scopes, subscriber: req.subscriber, groupIds: req.groupIds });
    return { client: systemClientToPb(client), clientSecret };
  }

  async getSystemClient(req: Parameters<Impl["getSystemClient"]>[0]) {
    return { client: systemClientToPb(await this.clients.get(req.clientId)) };
  }

  async listSystemClients() {
    return { clients: (await this.clients.list()).map(systemClientToPb) };
  }

  async regenerateSystemClientSecret(req: Parameters<Impl["regenerateSystemClientSecret"]>[0]) {
    return { clientId: req.clientId, clientSecret: await this.clients.regenerateSecret(req.clientId) };
  }

  async deleteSystemClient(req: Parameters<Impl["deleteSystemClient"]>[0]) {
    await this.clients.delete(req.clientId);
    return {};
  }
}

function systemClientToPb(c: SystemClient) {
  return {
    clientId: c.clientId,
    name: c.name,
    scopes: c.scopes,
    subscriber: c.subscriber,
    groupIds: c.groupIds,
    createTime: timestampFromDate(c.createdAt),
    updateTime: timestampFromDate(c.updatedAt),
  };
}
