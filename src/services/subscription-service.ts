import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { SubscriptionService } from "../../gen/keymanager/v1/subscription_service_pb.js";
import type { Api as PbApi } from "../../gen/keymanager/v1/types_pb.js";
import { requireField, Validator } from "../domain/validator.js";
import type { ApiInput, SubscriptionManager } from "../subscriptions/subscription-manager.js";
import type { Api, Subscription } from "../domain/model/index.js";
import { subscriptionStateFromPb, subscriptionStateToPb } from "./enums.js";

type Impl = ServiceImpl<typeof SubscriptionService>;

const API_FIELDS = ["name", "context", "version", "publisher", "api_tier"] as const;

/** keymanager.v1.SubscriptionService: APIs and subscriptions. */
export class SubscriptionServiceImpl implements Impl {
  constructor(private readonly manager: SubscriptionManager) {}

  async createApi(req: Parameters<Impl["createApi"]>[0]) {
    return { api: apiToPb(await this.manager.createApi(apiFromPb(req.api))) };
  }

  async getApi(req: Parameters<Impl["getApi"]>[0]) {
    return { api: apiToPb(await this.manager.getApi(requireField("api_id", req.apiId))) };
  }

  async updateApi(req: Parameters<Impl["updateApi"]>[0]) {
    const api = apiFromPb(req.api);
    const v = new Validator();
    v.required("api.api_id", api.apiId);
    const paths = req.updateMask?.paths.length ? req.updateMask.paths : API_FIELDS.filter((f) => api[camel(f)] !== "");
    for (const p of paths) if (!(API_FIELDS as readonly string[]).includes(p)) v.add("update_mask", `cannot update ${JSON.stringify(p.slice(0, 100))}`);
    v.throwIfInvalid();
    const patch: Partial<ApiInput> = {};
    for (const p of paths as (typeof API_FIELDS)[number][]) patch[camel(p)] = api[camel(p)];
    return { api: apiToPb(await this.manager.updateApi(api.apiId, patch)) };
  }

  async deleteApi(req: Parameters<Impl["deleteApi"]>[0]) {
    await this.manager.deleteApi(requireField("api_id", req.apiId));
    return {};
  }

  async listApis() {
    return { apis: (await this.manager.listApis()).map(apiToPb) };
  }

  async createSubscription(req: Parameters<Impl["createSubscription"]>[0]) {
    const v = new Validator();
    const state = subscriptionStateFromPb(v, "state", req.state);
    v.throwIfInvalid();
    const s = await this.manager.createSubscription({ applicationId: req.applicationId, apiId: req.apiId, tier: req.tier, state });
    return { subscription: subscriptionToPb(s) };
  }

  async getSubscription(req: Parameters<Impl["getSubscription"]>[0]) {
    return { subscription: subscriptionToPb(await this.manager.getSubscription(requireField("subscription_id", req.subscriptionId))) };
  }

  async updateSubscription(req: Parameters<Impl["updateSubscription"]>[0]) {
    const v = new Validator();
    v.required("subscription_id", req.subscriptionId);
    const state = subscriptionStateFromPb(v, "state", req.state);
    if (!req.tier && !state) v.add("tier", "give a tier or a state to change");
    v.throwIfInvalid();
    const change = { ...(req.tier ? { tier: req.tier } : {}), ...(state ? { state } : {}) };
    return { subscription: subscriptionToPb(await this.manager.updateSubscription(req.subscriptionId, change)) };
  }

  async deleteSubscription(req: Parameters<Impl["deleteSubscription"]>[0]) {
    await this.manager.deleteSubscription(requireField("subscription_id", req.subscriptionId));
    return {};
  }

  async listSubscriptions(req: Parameters<Impl["listSubscriptions"]>[0]) {
    const v = new Validator();
    if (!req.applicationId && !req.apiId) v.add("application_id", "give application_id, api_id or both");
    v.throwIfInvalid();
    const list = await this.manager.listSubscriptions({ applicationId: req.applicationId || undefined, apiId: req.apiId || undefined });
    return { subscriptions: list.map(subscriptionToPb) };
  }
}

function camel(field: (typeof API_FIELDS)[number]): "name" | "context" | "version" | "publisher" | "apiTier" {
  return field === "api_tier" ? "apiTier" : field;
}

function apiFromPb(api: PbApi | undefined): ApiInput {
  return {
    apiId: api?.apiId ?? "",
    name: api?.name ?? "",
    context: api?.context ?? "",
    version: api?.version ?? "",
    publisher: api?.publisher ?? "",
    apiTier: api?.apiTier ?? "",
  };
}

function apiToPb(a: Api) {
  return { ...a, createTime: timestampFromDate(a.createdAt), updateTime: timestampFromDate(a.updatedAt) };
}

function subscriptionToPb(s: Subscription) {
  return {
    subscriptionId: s.id,
    applicationId: s.applicationId,
    apiId: s.apiId,
    tier: s.tier,
    state: subscriptionStateToPb(s.state),
    createTime: timestampFromDate(s.createdAt),
    updateTime: timestampFromDate(s.updatedAt),
  };
}
