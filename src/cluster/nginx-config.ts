/**
 * The nginx configuration of the reference multi-replica deployment: one nginx in front of N
 * rerankd replicas. Every choice here is the one to carry over to any L7 balancer (an Ingress,
 * Envoy, HAProxy, a cloud load balancer):
 *
 * - least connections: a rerank request costs from a millisecond to seconds (1 to 1,000 documents),
 *   so round robin piles long requests onto one replica; the replica with the fewest open requests
 *   is the least loaded one.
 * - passive health checks: a replica that refuses connections, resets them, times out, or answers
 *   500/502/503 (engine failure, loading, draining) `max_fails` times within `fail_timeout` is taken
 *   out for `fail_timeout` seconds, then tried again with live traffic. Open-source nginx has no
 *   active checks; Kubernetes readiness probes on /health do that job there.
 * - retry on another replica (`proxy_next_upstream ... non_idempotent`): nginx by default never
 *   re-sends a POST, because a POST may change state. Scoring does not: a rerank or score request
 *   writes nothing and its answer depends only on its body and the model, so sending it again to
 *   another replica is safe (it costs only the compute already spent), and it is what turns a
 *   replica that is killed or drained mid-request into a slower answer instead of an error. The
 *   request body is buffered (`proxy_request_buffering on`, nginx's default) so it can be re-sent.
 * - 500 is retried too: rerankd answers 500 only for an engine failure (bad input is a 4xx), which
 *   is a fault of that replica. Without the retry, least-connections makes it worse: a replica that
 *   fails fast always has the fewest open requests, so it draws more than its share of traffic.
 *   `max_fails` 3 keeps one request that fails everywhere (tried once per replica, no more:
 *   `proxy_next_upstream_tries`) from taking every replica out of rotation. 429 (queue full) and
 *   504 (rerankd's own deadline) are not retried: the client gets them with rerankd's Retry-After.
 * - keep-alive to the replicas, with nginx's idle timeout (60 s) below rerankd's (Fastify's 72 s),
 *   so nginx never reuses a connection the replica has just closed; the rare race left is a
 *   connection error, which is retried.
 * - errors nginx itself produces (no live replica, body too large, timeouts) are answered in the
 *   API's JSON error shape, so clients see one error format whoever answered.
 */

export interface Upstream {
  host: string;
  port: number;
}

export interface NginxConfigOptions {
  /** Where nginx listens. */
  listenHost: string;
  listenPort: number;
  /** The rerankd replicas. */
  upstreams: readonly Upstream[];
  /** Directory for nginx's pid file, temp files and logs (absolute). */
  dir: string;
  /** rerankd's --max-body-bytes: nginx accepts the same, so rerankd decides and answers 413 itself. */
  maxBodyBytes: number;
  /** rerankd's --request-timeout in seconds (0 = none): nginx waits a little longer for a reply. */
  requestTimeoutSeconds: number;
  /** Failures within fail_timeout before a replica is taken out (passive check). Default 3. */
  maxFails?: number;
  /** Seconds a failed replica stays out before nginx tries it again (and the window for maxFails). Default 5. */
  failTimeoutSeconds?: number;
  /** Idle keep-alive connections nginx keeps open to each worker's replicas. Default 32. */
  keepaliveConnections?: number;
  /** The failures nginx retries on another replica (default: see RETRY_ON). */
  retryOn?: readonly string[];
  /** Write an access log (with each request's replica and status per attempt). Default true. */
  accessLog?: boolean;
  /** nginx worker processes. Default 1 (one worker handles thousands of connections). */
  workerProcesses?: number;
  /** Run worker processes as this user (only meaningful when nginx starts as root). */
  user?: string;
}

/** proxy_next_upstream's conditions: what makes nginx send a request to another replica (see above). */
export const RETRY_ON = ["error", "timeout", "http_500", "http_502", "http_503", "non_idempotent"] as const;

/** The API's error body, as nginx can send it. */
function jsonError(status: number, type: string, message: string): string {
  return JSON.stringify({ error: { message, type, param: null, code: status } });
}

/** Quotes a string for an nginx config (single quotes; backslash-escapes ' and \). */
function quote(text: string): string {
  return `'${text.replace(/[\\']/g, (c) => `\\${c}`)}'`;
}

export function renderNginxConfig(options: NginxConfigOptions): string {
  if (options.upstreams.length === 0) throw new Error("nginx config: at least one upstream is needed");
  const maxFails = options.maxFails ?? 3;
  const failTimeout = options.failTimeoutSeconds ?? 5;
  const keepalive = options.keepaliveConnections ?? 32;
  const dir = options.dir.replace(/\/+$/, "");
  // nginx waits for a reply past rerankd's own deadline, so the client sees rerankd's 504 JSON.
  // With no deadline on rerankd, an hour: a read timeout is then only ever a replica that hangs.
  const readTimeout = options.requestTimeoutSeconds > 0 ? Math.ceil(options.requestTimeoutSeconds) + 15 : 3600;
  const servers = options.upstreams.map((u) => `    server ${u.host}:${u.port} max_fails=${maxFails} fail_timeout=${failTimeout}s;`);
  const listen = options.listenHost.includes(":") ? `[${options.listenHost}]:${options.listenPort}` : `${options.listenHost}:${options.listenPort}`;

  return `# Generated by rerankd's cluster launcher (src/cluster/nginx-config.ts); regenerated on every start.
${options.user ? `user ${options.user};\n` : ""}daemon off;
master_process on;
worker_processes ${options.workerProcesses ?? 1};
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;

events {
  worker_connections 4096;
}

http {
  client_body_temp_path ${dir}/client_body_temp;
  proxy_temp_path ${dir}/proxy_temp;
  fastcgi_temp_path ${dir}/fastcgi_temp;
  uwsgi_temp_path ${dir}/uwsgi_temp;
  scgi_temp_path ${dir}/scgi_temp;

  log_format rerankd '$remote_addr [$time_iso8601] "$request" $status $body_bytes_sent '
                     'rid=$rerankd_request_id upstream="$upstream_addr" upstream_status="$upstream_status" '
                     'request_time=$request_time upstream_time="$upstream_response_time"';
  access_log ${options.accessLog === false ? "off" : `${dir}/access.log rerankd buffer=64k flush=1s`};

  server_tokens off;
  keepalive_timeout 65s;
  keepalive_requests 100000;
  # rerankd's --max-body-bytes, plus headroom: rerankd itself answers an oversize body with a JSON 413.
  client_max_body_size ${options.maxBodyBytes + 65536};
  client_body_buffer_size 1m;

  # One id per request, kept across retries: the client's X-Request-Id or nginx's own.
  map $http_x_request_id $rerankd_request_id {
    "" $request_id;
    default $http_x_request_id;
  }

  upstream rerankd {
    least_conn;
${servers.join("\n")}
    keepalive ${keepalive};
    keepalive_timeout 60s;
    keepalive_requests 100000;
  }

  server {
    listen ${listen} backlog=4096;

    location / {
      proxy_pass http://rerankd;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Request-Id $rerankd_request_id;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;

      # Scoring is idempotent, so a request whose replica failed is sent to another one (see above).
      proxy_next_upstream ${(options.retryOn ?? RETRY_ON).join(" ")};
      proxy_next_upstream_tries ${options.upstreams.length};
      proxy_request_buffering on;
      proxy_connect_timeout 2s;
      proxy_send_timeout ${readTimeout}s;
      proxy_read_timeout ${readTimeout}s;

      # Which replica(s) answered: "127.0.0.1:9001" or, after a retry, "127.0.0.1:9001, 127.0.0.1:9002".
      add_header X-Rerankd-Upstream $upstream_addr always;
    }

    # nginx's own errors in the API's JSON shape.
    error_page 413 @too_large;
    error_page 502 @no_replica;
    error_page 504 @timeout;
    location @too_large {
      default_type application/json;
      return 413 ${quote(jsonError(413, "PayloadTooLargeError", `The request body is larger than ${options.maxBodyBytes} bytes.`))};
    }
    location @no_replica {
      default_type application/json;
      add_header Retry-After 1 always;
      return 502 ${quote(jsonError(502, "ServiceUnavailableError", "No rerankd replica could take the request; retry shortly."))};
    }
    location @timeout {
      default_type application/json;
      return 504 ${quote(jsonError(504, "TimeoutError", "The request did not finish in time."))};
    }
  }
}
`;
}
