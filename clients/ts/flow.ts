// The client flow with a client that openapi-typescript and openapi-fetch
// make from the served contract, with default settings: `schema.ts` is
// generated at test time (clients/clients_test.go), never committed:
//
//   npx openapi-typescript openapi.json -o schema.ts
//
// The credential and the tenant are set once, on the client; every call
// after that names neither. A header the code reads must be one the
// contract declares for that answer, or this file does not compile.
import { randomUUID } from "node:crypto";
import createClient from "openapi-fetch";
import type { components, paths } from "./schema.js";

type Problem = components["schemas"]["Problem"];
type Declared<R> = R extends { headers: infer H } ? keyof { [K in keyof H as string extends K ? never : K]: H[K] } : never;
type Op<P extends keyof paths, M extends keyof paths[P]> = paths[P][M] extends { responses: infer R } ? R : never;

// header reads a header that the contract declares for operation answer R.
function header<R>(res: Response, name: Declared<R> & string): string | null {
  return res.headers.get(name);
}

function check(ok: boolean, what: string, detail?: unknown): asserts ok {
  if (!ok) {
    console.error(`FAIL: ${what}`, detail === undefined ? "" : JSON.stringify(detail));
    process.exit(1);
  }
}

function step(what: string): void {
  console.log(`ok  ${what}`);
}

// node flow.js -url <base URL> -tenant <slug> -key <admin API key> -other <another tenant's product id>
const arg = (name: string): string => {
  const i = process.argv.indexOf(`-${name}`);
  const v = i < 0 ? undefined : process.argv[i + 1];
  check(v !== undefined && v !== "", `give -${name}`);
  return v;
};

const baseUrl = arg("url");
const tenant = arg("tenant");
const otherID = arg("other");
const client = createClient<paths>({
  baseUrl,
  headers: { Authorization: `Bearer ${arg("key")}`, "X-Tenant-ID": tenant },
});

type MeAnswers = Op<"/v1/me", "get">;
const me = await client.GET("/v1/me");
check(me.data?.tenant_slug === tenant, "me", me.error);
const requestID = header<MeAnswers[200]>(me.response, "X-Request-ID");
const rateLimit = header<MeAnswers[200]>(me.response, "RateLimit");
check(!!requestID && !!rateLimit && !!header<MeAnswers[200]>(me.response, "RateLimit-Policy"), "me: headers");
step(`getMe: tenant ${me.data.tenant_slug}, X-Request-ID ${requestID}, RateLimit ${rateLimit}`);

// Create with an Idempotency-Key, then replay it.
type Created = Op<"/v1/products", "post">[201];
const key = `openapi-fetch-${randomUUID()}`;
const body = { name: "openapi-fetch 1", price: 100 };
const first = await client.POST("/v1/products", { params: { header: { "Idempotency-Key": key } }, body });
check(first.data !== undefined, "create", first.error);
check(header<Created>(first.response, "Location") === `/v1/products/${first.data.id}`, "create: Location");
check(!!header<Created>(first.response, "ETag") && header<Created>(first.response, "Idempotent-Replayed") === null, "create: headers");
const again = await client.POST("/v1/products", { params: { header: { "Idempotency-Key": key } }, body });
check(again.data?.id === first.data.id, "replay", again.error);
check(header<Created>(again.response, "Idempotent-Replayed") === "true", "replay: no Idempotent-Replayed");
step(`createProduct with Idempotency-Key, replayed: ${first.data.id}`);

const created = [first.data.id];
for (let i = 2; i <= 5; i++) {
  const res = await client.POST("/v1/products", { body: { name: `openapi-fetch ${i}`, price: i } });
  check(res.data !== undefined, "create", res.error);
  created.push(res.data.id);
}

// Every page, two at a time. Each page but the last links the next one
// (Link rel="next", RFC 8288) with the same cursor as next_cursor.
type ListAnswers = Op<"/v1/products", "get">;
const seen: string[] = [];
let cursor: string | undefined;
let pages = 0;
for (;;) {
  const page = await client.GET("/v1/products", { params: { query: cursor === undefined ? { limit: 2 } : { limit: 2, cursor } } });
  check(page.data !== undefined, "list", page.error);
  pages++;
  seen.push(...page.data.items.map((p) => p.id));
  const link = header<ListAnswers[200]>(page.response, "Link");
  if (page.data.next_cursor === null) {
    check(link === null, "list: no Link on the last page", link);
    break;
  }
  cursor = page.data.next_cursor;
  check(link === `</v1/products?cursor=${cursor}&limit=2>; rel="next"`, "list: Link to the next page", link);
}
check(JSON.stringify(seen) === JSON.stringify(created) && pages === 3, "list", { pages, seen, created });
step(`listProducts: ${pages} pages, ${seen.length} products`);

// Conditional GET.
type GetAnswers = Op<"/v1/products/{id}", "get">;
const id = first.data.id;
const path = { path: { id } };
const got = await client.GET("/v1/products/{id}", { params: path });
const tag = header<GetAnswers[200]>(got.response, "ETag");
check(got.data !== undefined && tag !== null, "get", got.error);
const same = await client.GET("/v1/products/{id}", { params: { ...path, header: { "If-None-Match": tag } } });
check(same.response.status === 304 && header<GetAnswers[304]>(same.response, "ETag") === tag, "conditional get", same.response.status);
step("getProduct with If-None-Match: 304");

// A change with the current tag, then one with the stale tag.
type PatchAnswers = Op<"/v1/products/{id}", "patch">;
const changed = await client.PATCH("/v1/products/{id}", { params: { ...path, header: { "If-Match": tag } }, body: { price: 250 } });
const current = header<PatchAnswers[200]>(changed.response, "ETag");
check(changed.data?.price === 250 && current !== null && current !== tag, "patch", changed.error);
const stale = await client.PATCH("/v1/products/{id}", { params: { ...path, header: { "If-Match": tag } }, body: { price: 250 } });
const problem: Problem | undefined = stale.error;
check(stale.response.status === 412 && problem?.type === "urn:rowfence:problem:precondition-failed", "stale patch", stale.error);
check(header<PatchAnswers[412]>(stale.response, "ETag") === current, "stale patch: ETag is not the current one");
step(`updateProduct with a stale If-Match: 412 ${problem.type}, ETag the current one`);

const deleted = await client.DELETE("/v1/products/{id}", { params: { ...path, header: { "If-Match": current } } });
check(deleted.response.status === 204, "delete", deleted.error);
const gone = await client.GET("/v1/products/{id}", { params: path });
check(gone.response.status === 404 && gone.error?.type === "urn:rowfence:problem:not-found", "get deleted", gone.error);
step("deleteProduct: 204, then 404");

const other = await client.GET("/v1/products/{id}", { params: { path: { id: otherID } } });
check(other.response.status === 404 && other.error?.type === "urn:rowfence:problem:not-found", "another tenant's product", other.error);
step(`getProduct of another tenant's id: 404 ${other.error.type}`);
