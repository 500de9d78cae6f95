/**
 * `council health`: grpc.health.v1.Health/Check over the client's own channel (same address, TLS
 * and certificates; the server needs no token for it). The TypeScript client has no health call
 * yet, so this borrows the channel of its generated stub; the two messages are small enough to
 * encode here (HealthCheckRequest: `string service = 1`; HealthCheckResponse: `ServingStatus
 * status = 1`).
 */
import { Client, credentials, Metadata, type Channel } from "@grpc/grpc-js";
import { BinaryReader, BinaryWriter } from "@bufbuild/protobuf/wire";
import type { CouncilClient } from "../clients/typescript/src/client.js";
import { CouncilError } from "../clients/typescript/src/errors.js";

/** HealthCheckResponse.ServingStatus, by number. */
export const SERVING_STATUS = ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"] as const;

function channelOf(client: CouncilClient): Channel {
  const stub = (client as unknown as { stub?: { getChannel?: () => Channel } }).stub;
  if (typeof stub?.getChannel !== "function") throw new Error("the TypeScript client no longer exposes its channel: update cli/health.ts");
  return stub.getChannel();
}

/** HealthCheckRequest; an empty service is the default value, which proto3 leaves out. */
const encodeRequest = (service: string) => (service ? Buffer.from(new BinaryWriter().uint32(10).string(service).finish()) : Buffer.alloc(0));

function decodeStatus(bytes: Buffer): number {
  const reader = new BinaryReader(bytes);
  let value = 0;
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    if (tag === 8) value = reader.int32();
    else reader.skip(tag & 7);
  }
  return value;
}

/** The serving status of `service` ("" is the whole server): a name of SERVING_STATUS. */
export async function checkHealth(client: CouncilClient, addr: string, service: string, timeoutMs: number): Promise<string> {
  // The override makes this Client a view of the CouncilClient's channel; the credentials are unused.
  const health = new Client(addr, credentials.createInsecure(), { channelOverride: channelOf(client) });
  const deadline = new Date(Date.now() + timeoutMs);
  const status = await client.withRetry(
    () =>
      new Promise<number>((resolve, reject) => {
        health.makeUnaryRequest(
          "/grpc.health.v1.Health/Check",
          encodeRequest,
          decodeStatus,
          service,
          new Metadata(),
          { deadline },
          (err, value) => (err ? reject(CouncilError.from(err)) : resolve(value ?? 0)),
        );
      }),
    { deadline },
  );
  return SERVING_STATUS[status] ?? String(status);
}
