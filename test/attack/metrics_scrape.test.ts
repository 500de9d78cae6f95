/**
 * Scrapes of /metrics share the event loop with gRPC: 32 clients scraping as fast as they could
 * (about 1,700 scrapes a second) took GetSummary from 2 ms to 40 ms at p50, because each scrape
 * rendered every metric anew. Now a rendered page is served again for up to a second, and scrapes
 * that arrive while one renders share it.
 */
import { expect } from "chai";
import { Metrics, serveMetrics } from "../../src/server/metrics.js";

describe("attack: scraping /metrics as fast as possible", () => {
  let served: { port: number; close: () => Promise<void> } | undefined;
  afterEach(async () => {
    await served?.close();
    served = undefined;
  });

  const scrape = async (port: number) => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();

  it("renders the metrics once for 200 scrapes that arrive together, and serves the same page within the cache time", async () => {
    const metrics = new Metrics(true);
    let renders = 0;
    const render = metrics.registry.metrics.bind(metrics.registry);
    metrics.registry.metrics = () => {
      renders++;
      return render();
    };
    // A cache time far longer than the test, so that the page cannot expire while it runs.
    served = await serveMetrics(metrics, "127.0.0.1:0", 600_000);
    const pages = await Promise.all(Array.from({ length: 200 }, () => scrape(served!.port)));
    expect(renders).to.equal(1);
    expect(new Set(pages).size).to.equal(1);
    metrics.calls.inc({ method: "GetSummary", code: "OK" });
    expect(await scrape(served.port)).to.equal(pages[0]);
    expect(renders).to.equal(1);
  });

  it("renders anew once the cache time is over", async () => {
    const metrics = new Metrics(false);
    served = await serveMetrics(metrics, "127.0.0.1:0", 0);
    const before = await scrape(served.port);
    metrics.calls.inc({ method: "GetSummary", code: "OK" });
    const after = await scrape(served.port);
    expect(before).to.not.include('council_grpc_calls_total{method="GetSummary",code="OK"} 1');
    expect(after).to.include('council_grpc_calls_total{method="GetSummary",code="OK"} 1');
  });
});
