/** grpc.health.v1.Health: the server ("") and CouncilService are SERVING while the store can serve. */
import { constants } from "node:http2";
import { status, type ServerWritableStream } from "@grpc/grpc-js";
import {
  HealthCheckResponse_ServingStatus as ServingStatus,
  type HealthCheckRequest,
  type HealthCheckResponse,
  type HealthServer,
} from "../gen/grpc/health/v1/health.js";
import { resetIfStillOpen } from "./calls.js";

export { ServingStatus };

export class Health {
  private readonly statuses = new Map<string, ServingStatus>();
  private readonly watchers = new Set<ServerWritableStream<HealthCheckRequest, HealthCheckResponse>>();

  constructor(services: string[]) {
    for (const name of ["", ...services]) this.statuses.set(name, ServingStatus.NOT_SERVING);
  }

  /** Sets every known service's status and tells the watchers whose status changed. */
  setAll(serving: boolean): void {
    const next = serving ? ServingStatus.SERVING : ServingStatus.NOT_SERVING;
    for (const [name, current] of this.statuses) {
      if (current === next) continue;
      this.statuses.set(name, next);
      for (const w of this.watchers) if (w.request.service === name) w.write({ status: next });
    }
  }

  /** Ends every Watch stream (at shutdown); one whose caller does not read is reset, not waited for. */
  endWatches(): void {
    for (const w of this.watchers) {
      w.end();
      resetIfStillOpen(w as ServerWritableStream<unknown, unknown>, constants.NGHTTP2_REFUSED_STREAM);
    }
    this.watchers.clear();
  }

  readonly implementation: HealthServer = {
    check: (call, callback) => {
      const s = this.statuses.get(call.request.service);
      if (s === undefined) callback({ code: status.NOT_FOUND, details: `unknown service ${call.request.service}` });
      else callback(null, { status: s });
    },
    watch: (call) => {
      call.write({ status: this.statuses.get(call.request.service) ?? ServingStatus.SERVICE_UNKNOWN });
      this.watchers.add(call);
      call.on("cancelled", () => this.watchers.delete(call));
    },
  };
}
