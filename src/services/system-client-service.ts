import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { SystemClientService } from "../../gen/keymanager/v1/system_client_service_pb.js";
import type { SystemClient, SystemClients } from "../auth/system-clients.js";
import { listName, type Paging } from "./page-tokens.js";

type Impl = ServiceImpl<typeof SystemClientService>;

/** keymanager.v1.SystemClientService: the callers of this service (admin scope). */
export class SystemClientServiceImpl implements Impl {
  constructor(
    private readonly clients: SystemClients,
    private readonly paging: Paging,
  ) {}

  async createSystemClient(req: Parameters<Impl["createSystemClient"]>[0]) {
    const c = req.systemClient;
    const { client, clientSecret } = await this.clients.create({
      name: c?.name ?? "",
      scopes: c?.scopes ?? [],
      subscriber: c?.subscriber ?? "",
      groupIds: c?.groupIds ?? [],
    });
    return { systemClient: systemClientToPb(client), clientSecret };
  }

  async getSystemClient(req: Parameters<Impl["getSystemClient"]>[0]) {
    return { systemClient: systemClientToPb(await this.clients.get(req.clientId)) };
  }

  async listSystemClients(req: Parameters<Impl["listSystemClients"]>[0]) {
    const list = listName("ListSystemClients");
    const page = await this.clients.list(this.paging.query(list, req));
    return { systemClients: page.items.map(systemClientToPb), nextPageToken: this.paging.nextPageToken(list, page) };
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
