/**
 * gRPC server reflection (v1 and v1alpha), answered from the descriptor set that `buf build`
 * writes (src/gen/council.binpb). Serving buf's own descriptors, with their imports and source
 * comments, is what lets grpcurl `describe` and call every RPC with no proto files at hand.
 */
import { readFileSync } from "node:fs";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  FileDescriptorProtoSchema,
  FileDescriptorSetSchema,
  type DescriptorProto,
  type FileDescriptorProto,
} from "@bufbuild/protobuf/wkt";
import { status, type ServerDuplexStream } from "@grpc/grpc-js";
import type { ServerReflectionRequest, ServerReflectionResponse } from "../gen/grpc/reflection/v1/reflection.js";

export const DESCRIPTOR_SET_URL = new URL("../gen/council.binpb", import.meta.url);

export class DescriptorIndex {
  private readonly files = new Map<string, { proto: FileDescriptorProto; bytes: Uint8Array }>();
  private readonly symbols = new Map<string, string>();
  private readonly extensions = new Map<string, Map<number, string>>();

  constructor(descriptorSet: Uint8Array) {
    for (const file of fromBinary(FileDescriptorSetSchema, descriptorSet).file) {
      this.files.set(file.name, { proto: file, bytes: toBinary(FileDescriptorProtoSchema, file) });
      const prefix = file.package ? `${file.package}.` : "";
      const add = (name: string) => this.symbols.set(name, file.name);
      const addMessage = (m: DescriptorProto, scope: string) => {
        const name = `${scope}${m.name}`;
        add(name);
        m.field.forEach((f) => add(`${name}.${f.name}`));
        m.oneofDecl.forEach((o) => add(`${name}.${o.name}`));
        m.enumType.forEach((e) => add(`${name}.${e.name}`));
        m.nestedType.forEach((n) => addMessage(n, `${name}.`));
        m.extension.forEach((x) => this.addExtension(x.extendee, x.number, file.name, `${name}.${x.name}`));
      };
      file.messageType.forEach((m) => addMessage(m, prefix));
      file.enumType.forEach((e) => {
        add(`${prefix}${e.name}`);
        e.value.forEach((v) => add(`${prefix}${v.name}`));
      });
      file.service.forEach((s) => {
        add(`${prefix}${s.name}`);
        s.method.forEach((m) => add(`${prefix}${s.name}.${m.name}`));
      });
      file.extension.forEach((x) => this.addExtension(x.extendee, x.number, file.name, `${prefix}${x.name}`));
    }
  }

  static load(url: URL = DESCRIPTOR_SET_URL): DescriptorIndex {
    return new DescriptorIndex(readFileSync(url));
  }

  private addExtension(extendee: string, number: number, fileName: string, name: string) {
    const type = extendee.replace(/^\./, "");
    if (!this.extensions.has(type)) this.extensions.set(type, new Map());
    this.extensions.get(type)!.set(number, fileName);
    this.symbols.set(name, fileName);
  }

  /** The file and every file it imports, transitively, serialized; the named file first. */
  fileWithDependencies(fileName: string): Uint8Array[] | undefined {
    if (!this.files.has(fileName)) return undefined;
    const seen = new Set<string>();
    const out: Uint8Array[] = [];
    const visit = (name: string) => {
      const file = this.files.get(name);
      if (!file || seen.has(name)) return;
      seen.add(name);
      out.push(file.bytes);
      file.proto.dependency.forEach(visit);
    };
    visit(fileName);
    return out;
  }

  fileContainingSymbol(symbol: string): Uint8Array[] | undefined {
    const file = this.symbols.get(symbol.replace(/^\./, ""));
    return file === undefined ? undefined : this.fileWithDependencies(file);
  }

  fileContainingExtension(type: string, number: number): Uint8Array[] | undefined {
    const file = this.extensions.get(type)?.get(number);
    return file === undefined ? undefined : this.fileWithDependencies(file);
  }

  extensionNumbers(type: string): number[] | undefined {
    if (!this.symbols.has(type)) return undefined;
    return [...(this.extensions.get(type)?.keys() ?? [])];
  }
}

type ReflectionCall = ServerDuplexStream<ServerReflectionRequest, ServerReflectionResponse>;

/** A ServerReflectionInfo handler over `index`, listing `services` (the services actually served). */
export function reflectionHandler(index: DescriptorIndex, services: string[]) {
  const answer = (req: ServerReflectionRequest): ServerReflectionResponse["messageResponse"] => {
    const files = (found: Uint8Array[] | undefined, what: string): ServerReflectionResponse["messageResponse"] =>
      found
        ? { $case: "fileDescriptorResponse", value: { fileDescriptorProto: found.map((b) => Buffer.from(b)) } }
        : { $case: "errorResponse", value: { errorCode: status.NOT_FOUND, errorMessage: `${what} not found` } };
    const r = req.messageRequest;
    switch (r?.$case) {
      case "listServices":
        return { $case: "listServicesResponse", value: { service: services.map((name) => ({ name })) } };
      case "fileByFilename":
        return files(index.fileWithDependencies(r.value), `file ${r.value}`);
      case "fileContainingSymbol":
        return files(index.fileContainingSymbol(r.value), `symbol ${r.value}`);
      case "fileContainingExtension":
        return files(
          index.fileContainingExtension(r.value.containingType, r.value.extensionNumber),
          `extension ${r.value.containingType}(${r.value.extensionNumber})`,
        );
      case "allExtensionNumbersOfType": {
        const numbers = index.extensionNumbers(r.value);
        return numbers
          ? { $case: "allExtensionNumbersResponse", value: { baseTypeName: r.value, extensionNumber: numbers } }
          : { $case: "errorResponse", value: { errorCode: status.NOT_FOUND, errorMessage: `type ${r.value} not found` } };
      }
      default:
        return {
          $case: "errorResponse",
          value: { errorCode: status.INVALID_ARGUMENT, errorMessage: "empty or unknown reflection request" },
        };
    }
  };

  return (call: ReflectionCall) => {
    call.on("data", (req: ServerReflectionRequest) => {
      call.write({ validHost: req.host, originalRequest: req, messageResponse: answer(req) });
    });
    call.on("end", () => call.end());
    call.on("error", () => call.end());
  };
}
