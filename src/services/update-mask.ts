import type { FieldMask } from "@bufbuild/protobuf/wkt";
import type { Validator } from "../domain/validator.js";

/**
 * The fields an Update{X} changes (the convention of every Update RPC): the paths of its
 * update_mask, each of which must be updatable (an unknown, output-only or fixed field is a
 * violation of "update_mask"); without a mask, every updatable field that is set.
 */
export function updatePaths<P extends string>(v: Validator, mask: FieldMask | undefined, updatable: readonly P[], isSet: (path: P) => boolean): P[] {
  if (!mask || mask.paths.length === 0) return updatable.filter(isSet);
  const known = (p: string): p is P => (updatable as readonly string[]).includes(p);
  for (const p of mask.paths) if (!known(p)) v.add("update_mask", `cannot update ${JSON.stringify(p.slice(0, 100))}`);
  return mask.paths.filter(known);
}
