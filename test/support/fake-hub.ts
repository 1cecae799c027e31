// A local stand-in for the Hugging Face Hub, speaking the parts of its HTTP API that huggingface_hub (and
// src/models/hub) use, on 127.0.0.1 with a random port:
//   GET  /api/models/{owner}/{name}/revision/{rev}[?blobs=true] -> { id, sha, siblings[] }
//   GET  /api/models/{owner}/{name}/tree/{rev}?recursive=true   -> [{ type, path, oid, size, lfs? }]
//        (what Python huggingface_hub >= 1.x lists a snapshot with; lets tests run it against this fake)
//   HEAD /{owner}/{name}/resolve/{rev}/{path}   -> X-Repo-Commit, ETag (git blob sha1), Content-Length;
//   GET  same                                       for LFS files a 302 to the "CDN" with X-Linked-Etag
//                                                   (sha256) and X-Linked-Size
//   GET  /cdn/{sha256}?sig=...                   -> LFS content (the CDN; Range supported)
// A renamed repo answers 307 with a relative Location to its new name, like the Hub.
// Errors carry X-Error-Code like the real Hub (RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo).
// Switches let tests require a token, cut a connection (or stall) after N bytes once, corrupt content, ignore
// Range, leave out X-Linked-Size; every request is recorded. The CDN is the same request handler on a second
// listener: another port of 127.0.0.1 by default (another host for the Hub's rules, which compare host and
// port), or 127.0.0.2 with `cdnOnOtherHost`.

import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface FakeFile {
  path: string;
  content: Buffer | string;
  /** Stored with Git LFS: served through a 302 to the CDN, etag = sha256. */
  lfs?: boolean;
}

export interface FakeRepo {
  id: string;
  files: FakeFile[];
  /** 40-hex commit (default: derived from the id). */
  commit?: string;
  /** Extra branches/tags -> commit (main always points at `commit`). */
  refs?: Record<string, string>;
  /** "private": 401 RepoNotFound without the token; "gated": metadata public, files need the token. */
  access?: "public" | "private" | "gated";
}

export interface FakeHubOptions {
  repos: FakeRepo[];
  /** The token that opens private and gated repos. */
  token?: string;
  /** Put the CDN on 127.0.0.2 instead of another port of 127.0.0.1. */
  cdnOnOtherHost?: boolean;
  /** Old repo id -> current id: answered with a 307 to the new name. */
  renamed?: Record<string, string>;
}

export interface RecordedRequest {
  method: string;
  /** Decoded path, without the query string. */
  path: string;
  /** Path and query as sent. */
  rawUrl: string;
  host: string;
  range: string | undefined;
  authorization: string | undefined;
  kind: "api" | "resolve" | "cdn" | "other";
  status: number;
}

interface StoredFile {
  path: string;
  content: Buffer;
  lfs: boolean;
  sha256: string;
  gitSha1: string;
  pointer: string;
}

interface StoredRepo {
  id: string;
  commit: string;
  refs: Map<string, string>;
  files: Map<string, StoredFile>;
  access: "public" | "private" | "gated";
}

export function sha256Hex(data: Buffer | string): string {
  return createHash("sha256").update(data).digest("hex");
}

export function gitBlobSha1(data: Buffer): string {
  return createHash("sha1").update(`blob ${data.length}\0`).update(data).digest("hex");
}

function lfsPointer(sha256: string, size: number): string {
  return `version https://git-lfs.github.com/spec/v1\noid sha256:${sha256}\nsize ${size}\n`;
}

export function fakeCommit(seed: string): string {
  return createHash("sha1").update(`commit:${seed}`).digest("hex");
}

async function listen(server: Server, host: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, () => resolve());
  });
  return (server.address() as AddressInfo).port;
}

export class FakeHub {
  readonly requests: RecordedRequest[] = [];
  /** Token required by private/gated repos. */
  token: string | undefined;
  /** Repo file path -> cut the connection after that many body bytes, once. */
  readonly cutOnce = new Map<string, number>();
  /** Repo file path -> send that many body bytes, then stall (socket left open), once. */
  readonly stallOnce = new Map<string, number>();
  /** Repo file paths whose served content has one byte flipped (size unchanged). */
  readonly corrupt = new Set<string>();
  /** Answer 200 with the whole file to Range requests. */
  ignoreRange = false;
  /** Leave X-Linked-Size out of LFS redirects (the size must then come from elsewhere). */
  omitLinkedSize = false;

  endpoint = "";
  cdnOrigin = "";
  private readonly repos = new Map<string, StoredRepo>();
  private readonly byBlob = new Map<string, StoredFile>();
  private readonly servers: Server[] = [];
  private readonly renamed: Map<string, string>;

  private constructor(options: FakeHubOptions) {
    this.token = options.token;
    this.renamed = new Map(Object.entries(options.renamed ?? {}));
    for (const spec of options.repos) this.addRepo(spec);
  }

  static async start(options: FakeHubOptions): Promise<FakeHub> {
    const hub = new FakeHub(options);
    const handler = (req: IncomingMessage, res: ServerResponse): void => hub.handle(req, res);
    const main = createServer(handler);
    hub.servers.push(main);
    hub.endpoint = `http://127.0.0.1:${await listen(main, "127.0.0.1")}`;
    const cdn = createServer(handler);
    hub.servers.push(cdn);
    const cdnHost = options.cdnOnOtherHost ? "127.0.0.2" : "127.0.0.1";
    hub.cdnOrigin = `http://${cdnHost}:${await listen(cdn, cdnHost)}`;
    return hub;
  }

  addRepo(spec: FakeRepo): StoredRepo {
    const commit = spec.commit ?? fakeCommit(spec.id);
    const files = new Map<string, StoredFile>();
    for (const f of spec.files) {
      const content = Buffer.isBuffer(f.content) ? f.content : Buffer.from(f.content);
      const sha256 = sha256Hex(content);
      const pointer = lfsPointer(sha256, content.length);
      const stored: StoredFile = {
        path: f.path,
        content,
        lfs: f.lfs === true,
        sha256,
        gitSha1: gitBlobSha1(f.lfs ? Buffer.from(pointer) : content),
        pointer,
      };
      files.set(f.path, stored);
      if (stored.lfs) this.byBlob.set(sha256, stored);
    }
    const refs = new Map<string, string>([["main", commit], ...Object.entries(spec.refs ?? {})]);
    const repo: StoredRepo = { id: spec.id, commit, refs, files, access: spec.access ?? "public" };
    this.repos.set(spec.id, repo);
    return repo;
  }

  commitOf(repoId: string): string {
    const repo = this.repos.get(repoId);
    if (!repo) throw new Error(`no fake repo ${repoId}`);
    return repo.commit;
  }

  file(repoId: string, path: string): StoredFile {
    const f = this.repos.get(repoId)?.files.get(path);
    if (!f) throw new Error(`no fake file ${repoId}/${path}`);
    return f;
  }

  /** Requests that fetched file metadata or content (resolve + CDN), i.e. not the repo API. */
  fileRequests(): RecordedRequest[] {
    return this.requests.filter((r) => r.kind === "resolve" || r.kind === "cdn");
  }

  clearRequests(): void {
    this.requests.length = 0;
  }

  async close(): Promise<void> {
    await Promise.all(
      this.servers.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.closeAllConnections();
            s.close(() => resolve());
          }),
      ),
    );
  }

  // ------------------------------------------------------------------------------------------------------

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? "/", "http://fake");
    const path = decodeURIComponent(url.pathname);
    const record: RecordedRequest = {
      method: req.method ?? "GET",
      path,
      rawUrl: req.url ?? "/",
      host: req.headers.host ?? "",
      range: req.headers.range,
      authorization: req.headers.authorization,
      kind: "other",
      status: 0,
    };
    this.requests.push(record);
    res.on("finish", () => {
      record.status = res.statusCode;
    });
    res.on("close", () => {
      if (record.status === 0) record.status = res.statusCode;
    });

    const api = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/(.+)$/.exec(url.pathname);
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    const oldId = api ? decodeURIComponent(api[1]) : resolve ? decodeURIComponent(resolve[1]) : undefined;
    const newId = oldId !== undefined ? this.renamed.get(oldId) : undefined;
    if (oldId !== undefined && newId !== undefined) {
      record.kind = api ? "api" : "resolve";
      const raw = req.url ?? "/";
      const location = raw.replace(api ? `/api/models/${oldId}/` : `/${oldId}/`, api ? `/api/models/${newId}/` : `/${newId}/`);
      res.writeHead(307, { location, "content-length": "0" });
      res.end();
      return;
    }
    const tree = /^\/api\/models\/([^/]+\/[^/]+)\/tree\/([^/]+)$/.exec(url.pathname);
    if (tree) {
      record.kind = "api";
      this.handleTree(req, res, decodeURIComponent(tree[1]), decodeURIComponent(tree[2]));
      return;
    }
    if (api) {
      record.kind = "api";
      this.handleApi(req, res, decodeURIComponent(api[1]), decodeURIComponent(api[2]), url.searchParams.get("blobs") === "true");
      return;
    }
    const cdn = /^\/cdn\/([0-9a-f]{64})$/.exec(url.pathname);
    if (cdn) {
      record.kind = "cdn";
      const file = this.byBlob.get(cdn[1]);
      if (!file) return this.error(res, 404, "EntryNotFound", "no such blob");
      this.sendContent(req, res, file, { ETag: `"${file.sha256}"` });
      return;
    }
    if (resolve) {
      record.kind = "resolve";
      this.handleResolve(req, res, decodeURIComponent(resolve[1]), decodeURIComponent(resolve[2]), resolve[3].split("/").map(decodeURIComponent).join("/"));
      return;
    }
    this.error(res, 404, undefined, "not found");
  }

  private error(res: ServerResponse, status: number, code: string | undefined, message: string, extra: Record<string, string> = {}): void {
    const body = JSON.stringify({ error: message });
    res.writeHead(status, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(body),
      ...(code ? { "x-error-code": code } : {}),
      "x-error-message": message,
      ...extra,
    });
    res.end(body);
  }

  private authorized(req: IncomingMessage): boolean {
    return this.token !== undefined && req.headers.authorization === `Bearer ${this.token}`;
  }

  /** Returns the repo, or answers the error and returns undefined. */
  private repoFor(req: IncomingMessage, res: ServerResponse, repoId: string, files: boolean): StoredRepo | undefined {
    const repo = this.repos.get(repoId);
    if (!repo) {
      this.error(res, 404, "RepoNotFound", "Repository not found");
      return undefined;
    }
    if (repo.access === "private" && !this.authorized(req)) {
      this.error(res, 401, "RepoNotFound", "Invalid username or password.");
      return undefined;
    }
    if (repo.access === "gated" && files && !this.authorized(req)) {
      const status = req.headers.authorization ? 403 : 401;
      this.error(res, status, "GatedRepo", `Access to model ${repoId} is restricted and you are not in the authorized list.`);
      return undefined;
    }
    return repo;
  }

  private commitFor(repo: StoredRepo, revision: string): string | undefined {
    if (revision === repo.commit) return repo.commit;
    return repo.refs.get(revision);
  }

  private handleApi(req: IncomingMessage, res: ServerResponse, repoId: string, revision: string, blobs: boolean): void {
    const repo = this.repoFor(req, res, repoId, false);
    if (!repo) return;
    const commit = this.commitFor(repo, revision);
    if (!commit) return this.error(res, 404, "RevisionNotFound", `Invalid rev id: ${revision}`);
    const siblings = [...repo.files.values()].map((f) =>
      blobs
        ? {
            rfilename: f.path,
            blobId: f.gitSha1,
            size: f.lfs ? f.content.length : f.content.length,
            ...(f.lfs ? { lfs: { sha256: f.sha256, size: f.content.length, pointerSize: f.pointer.length } } : {}),
          }
        : { rfilename: f.path },
    );
    const body = JSON.stringify({ id: repo.id, modelId: repo.id, sha: commit, siblings });
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    res.end(req.method === "HEAD" ? undefined : body);
  }

  private handleTree(req: IncomingMessage, res: ServerResponse, repoId: string, revision: string): void {
    const repo = this.repoFor(req, res, repoId, false);
    if (!repo) return;
    if (!this.commitFor(repo, revision)) return this.error(res, 404, "RevisionNotFound", `Invalid rev id: ${revision}`);
    const entries = [...repo.files.values()].map((f) => ({
      type: "file",
      oid: f.gitSha1,
      size: f.content.length,
      path: f.path,
      ...(f.lfs ? { lfs: { oid: f.sha256, size: f.content.length, pointerSize: f.pointer.length } } : {}),
    }));
    const body = JSON.stringify(entries);
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    res.end(body);
  }

  private handleResolve(req: IncomingMessage, res: ServerResponse, repoId: string, revision: string, path: string): void {
    const repo = this.repoFor(req, res, repoId, true);
    if (!repo) return;
    const commit = this.commitFor(repo, revision);
    if (!commit) return this.error(res, 404, "RevisionNotFound", `Invalid rev id: ${revision}`);
    const file = repo.files.get(path);
    if (!file) return this.error(res, 404, "EntryNotFound", `${path} does not exist on "${revision}"`, { "x-repo-commit": commit });
    if (file.lfs) {
      res.writeHead(302, {
        location: `${this.cdnOrigin}/cdn/${file.sha256}?sig=signed-url`,
        "x-repo-commit": commit,
        "x-linked-etag": `"${file.sha256}"`,
        ...(this.omitLinkedSize ? {} : { "x-linked-size": String(file.content.length) }),
        etag: `"${file.gitSha1}"`,
        "content-length": "0",
      });
      res.end();
      return;
    }
    this.sendContent(req, res, file, { "x-repo-commit": commit, etag: `"${file.gitSha1}"` });
  }

  private sendContent(req: IncomingMessage, res: ServerResponse, file: StoredFile, headers: Record<string, string>): void {
    let content = file.content;
    if (this.corrupt.has(file.path) && content.length > 0) {
      content = Buffer.from(content);
      content[content.length >> 1] ^= 0xff;
    }
    const total = content.length;
    let start = 0;
    let status = 200;
    const range = req.headers.range;
    const extra: Record<string, string> = { "accept-ranges": "bytes" };
    if (range && !this.ignoreRange) {
      const m = /^bytes=(\d+)-$/.exec(range);
      if (m) {
        start = Number(m[1]);
        if (start >= total) {
          res.writeHead(416, { "content-range": `bytes */${total}`, ...headers });
          res.end();
          return;
        }
        status = 206;
        extra["content-range"] = `bytes ${start}-${total - 1}/${total}`;
      }
    }
    const body = content.subarray(start);
    res.writeHead(status, {
      "content-type": "application/octet-stream",
      "content-length": String(body.length),
      ...extra,
      ...headers,
    });
    if (req.method === "HEAD") {
      res.end();
      return;
    }
    const stall = req.method === "GET" ? this.stallOnce.get(file.path) : undefined;
    if (stall !== undefined && stall < body.length) {
      this.stallOnce.delete(file.path);
      res.write(body.subarray(0, stall));
      return; // the client must give up by itself; close() ends the socket
    }
    const cut = req.method === "GET" ? this.cutOnce.get(file.path) : undefined;
    if (cut !== undefined && cut < body.length) {
      this.cutOnce.delete(file.path);
      res.write(body.subarray(0, cut), () => {
        // Let the bytes reach the client, then drop the connection mid-body.
        setTimeout(() => res.socket?.destroy(), 20);
      });
      return;
    }
    res.end(body);
  }
}
