import assert from "node:assert/strict";
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { readBody } from "../../server/http/io.js";

// readBody over real loopback HTTP: a body declared by content-length is
// complete once that many bytes arrived, a chunked one at its end, and
// neither may come back short or mixed with the next request's bytes.

describe("readBody", () => {
  let server: Server;
  let origin: string;

  before(async () => {
    server = createServer((req, res) => {
      readBody(req, 1024).then(
        (body) => res.end(JSON.stringify({ length: body.length, text: body.toString("utf8") })),
        (err: Error) => {
          res.statusCode = 413;
          res.end(err.message);
        },
      );
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  /** send writes parts with a pause between them, so the server sees separate reads. */
  function send(parts: string[], headers: Record<string, string>, agent?: import("node:http").Agent): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = request(`${origin}/`, { method: "POST", headers, agent }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on("error", reject);
      void (async () => {
        for (const [i, p] of parts.entries()) {
          if (i > 0) await new Promise((r) => setTimeout(r, 20));
          req.write(p);
        }
        req.end();
      })();
    });
  }

  it("waits for every declared byte when the body arrives in pieces", async () => {
    const parts = ['{"a":', '"bé"', "}"];
    const length = Buffer.byteLength(parts.join(""));
    const r = await send(parts, { "content-length": String(length) });
    assert.deepEqual(JSON.parse(r.body), { length, text: '{"a":"bé"}' });
  });

  it("reads a chunked body (no declared length) to its end", async () => {
    const r = await send(["first,", "second,", "third"], { "transfer-encoding": "chunked" });
    assert.deepEqual(JSON.parse(r.body), { length: 18, text: "first,second,third" });
  });

  it("keeps requests on one kept-alive connection apart", async () => {
    const { Agent } = await import("node:http");
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const bodies = ["one", "two-two", "three-three-three"];
      const results = await Promise.all(bodies.map((b) => send([b], { "content-length": String(b.length) }, agent)));
      assert.deepEqual(
        results.map((r) => JSON.parse(r.body).text),
        bodies,
      );
    } finally {
      agent.destroy();
    }
  });

  it("refuses a body over the limit", async () => {
    const r = await send(["x".repeat(2000)], { "transfer-encoding": "chunked" });
    assert.equal(r.status, 413);
    assert.match(r.body, /exceeds the 1024-byte limit/);
  });
});
