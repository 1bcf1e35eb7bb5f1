import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { CreateConsumerSecretRequest } from "../../gen/keymanager/v1/key_manager_service_pb.js";
import type { ConsumerSecretSchema } from "../../gen/keymanager/v1/types_pb.js";
import type { ConsumerSecretRecord } from "../domain/model/index.js";
import { Validator } from "../domain/validator.js";
import type { NewConsumerSecret } from "../keymanager/consumer-secrets.js";

/** CreateConsumerSecret's request, checked in shape; its meaning (bounds, the client) is the key manager's. */
export function newSecretFromPb(req: CreateConsumerSecretRequest): NewConsumerSecret {
  const v = new Validator();
  const consumerKey = req.secret?.consumerKey ?? "";
  v.required("secret.consumer_key", consumerKey);
  const seconds = req.validityPeriodSeconds;
  if (seconds < 0n) v.add("validity_period_seconds", "must not be negative");
  v.throwIfInvalid();
  // Beyond the safe integers it is out of every bound; the key manager says so with the bound.
  return { consumerKey, description: req.secret?.description ?? "", validitySeconds: Number(seconds) };
}

/** What may be shown of a secret: never its value or hash. */
export function consumerSecretToPb(s: ConsumerSecretRecord): MessageInitShape<typeof ConsumerSecretSchema> {
  return {
    secretId: s.secretId,
    consumerKey: s.consumerKey,
    description: s.description,
    hint: s.hint,
    createTime: timestampFromDate(s.createdAt),
    ...(s.expiresAt ? { expireTime: timestampFromDate(s.expiresAt) } : {}),
  };
}
