import { type DescFile, type DescService, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type * as grpc from "@grpc/grpc-js";
import { ReflectionService } from "@grpc/reflection";
import { file_grpc_health_v1_health } from "../../gen/grpc/health/v1/health_pb.js";

/**
 * gRPC server reflection (v1 and v1alpha) for the given services and grpc.health.v1, so grpcurl
 * and `buf curl` can list and call every method. @grpc/reflection reads serialized
 * FileDescriptorProtos from a proto-loader package definition; ours come from the protobuf-es
 * generated descriptors (health included: proto-loader's own descriptor of it is not valid for
 * Go-based clients).
 */
export function addReflection(server: grpc.Server, services: readonly DescService[]): void {
  const files = new Map<string, Buffer>();
  for (const service of services) collectFiles(service.file, files);
  collectFiles(file_grpc_health_v1_health, files);
  const packageDefinition = { "reflection.files": { fileDescriptorProtos: [...files.values()] } };
  new ReflectionService(packageDefinition as never).addToServer(server);
}

function collectFiles(file: DescFile, into: Map<string, Buffer>): void {
  if (into.has(file.proto.name)) return;
  for (const dependency of file.dependencies) collectFiles(dependency, into);
  into.set(file.proto.name, Buffer.from(toBinary(FileDescriptorProtoSchema, file.proto)));
}
