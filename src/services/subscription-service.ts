import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { SubscriptionService } from "../../gen/keymanager/v1/subscription_service_pb.js";
import { type Api as PbApi, SubscriptionSchema, SubscriptionState } from "../../gen/keymanager/v1/types_pb.js";
import { requireField, Validator } from "../domain/validator.js";
import type { ApiInput, SubscriptionManager } from "../subscriptions/subscription-manager.js";
import type { Api, Subscription } from "../domain/model/index.js";
import { subscriptionStateFromPb, subscriptionStateToPb } from "./enums.js";
import { listName, type Paging } from "./page-tokens.js";
import { updatePaths } from "./update-mask.js";

type Impl = ServiceImpl<typeof SubscriptionService>;

const API_FIELDS = ["name", "context", "version", "publisher", "api_tier"] as const;
const SUBSCRIPTION_FIELDS = ["tier", "state"] as const;

/** keymanager.v1.SubscriptionService: APIs and subscriptions. */
export class SubscriptionServiceImpl implements Impl {
  constructor(
    private readonly manager: SubscriptionManager,
    private readonly paging: Paging,
  ) {}

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
    const paths = updatePaths(v, req.updateMask, API_FIELDS, (f) => api[camel(f)] !== "");
    v.throwIfInvalid();
    const patch: Partial<ApiInput> = {};
    for (const p of paths) patch[camel(p)] = api[camel(p)];
    return { api: apiToPb(await this.manager.updateApi(api.apiId, patch)) };
  }

  async deleteApi(req: Parameters<Impl["deleteApi"]>[0]) {
    await this.manager.deleteApi(requireField("api_id", req.apiId));
    return {};
  }

  async listApis(req: Parameters<Impl["listApis"]>[0]) {
    const list = listName("ListApis");
    const page = await this.manager.listApis(this.paging.query(list, req));
    return { apis: page.items.map(apiToPb), nextPageToken: this.paging.nextPageToken(list, page) };
  }

  async createSubscription(req: Parameters<Impl["createSubscription"]>[0]) {
    const s = req.subscription ?? create(SubscriptionSchema);
    const v = new Validator();
    const state = subscriptionStateFromPb(v, "state", s.state);
    v.throwIfInvalid();
    const created = await this.manager.createSubscription({ applicationId: s.applicationId, apiId: s.apiId, tier: s.tier, state });
    return { subscription: subscriptionToPb(created) };
  }

  async getSubscription(req: Parameters<Impl["getSubscription"]>[0]) {
    return { subscription: subscriptionToPb(await this.manager.getSubscription(requireField("subscription_id", req.subscriptionId))) };
  }

  async updateSubscription(req: Parameters<Impl["updateSubscription"]>[0]) {
    const s = req.subscription ?? create(SubscriptionSchema);
    const v = new Validator();
    v.required("subscription.subscription_id", s.subscriptionId);
    const paths = updatePaths(v, req.updateMask, SUBSCRIPTION_FIELDS, (f) => (f === "tier" ? s.tier !== "" : s.state !== SubscriptionState.UNSPECIFIED));
    if (paths.length === 0) v.add("update_mask", "give a tier or a state to change");
    // A state named in the mask must be one; the tier is checked by the domain.
    const state = paths.includes("state") ? subscriptionStateFromPb(v, "subscription.state", s.state) : undefined;
    if (paths.includes("state") && s.state === SubscriptionState.UNSPECIFIED) v.add("subscription.state", "is required when update_mask names it");
    v.throwIfInvalid();
    const change = { ...(paths.includes("tier") ? { tier: s.tier } : {}), ...(state ? { state } : {}) };
    return { subscription: subscriptionToPb(await this.manager.updateSubscription(s.subscriptionId, change)) };
  }

  async deleteSubscription(req: Parameters<Impl["deleteSubscription"]>[0]) {
    await this.manager.deleteSubscription(requireField("subscription_id", req.subscriptionId));
    return {};
  }

  async listSubscriptions(req: Parameters<Impl["listSubscriptions"]>[0]) {
    const v = new Validator();
    if (!req.applicationId && !req.apiId) v.add("application_id", "give application_id, api_id or both");
    v.throwIfInvalid();
    const list = listName("ListSubscriptions", req.applicationId, req.apiId);
    const filter = { applicationId: req.applicationId || undefined, apiId: req.apiId || undefined };
    const page = await this.manager.listSubscriptions(filter, this.paging.query(list, req));
    return { subscriptions: page.items.map(subscriptionToPb), nextPageToken: this.paging.nextPageToken(list, page) };
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
