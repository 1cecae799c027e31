/**
 * What a scoring call carries besides its body: the request id, a signal that aborts when the
 * client goes away or the request's deadline (--request-timeout) passes, and the admission
 * control that bounds the queue. Aborting drops the request's queued pairs from the scheduler.
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import type { Admission } from "./admission.js";
import { CancelledError } from "./errors.js";
import type { RequestLimits } from "./limits.js";

declare module "fastify" {
  interface FastifyInstance {
    /** Per-request limits of this server (set by buildApp). */
    rerankdLimits: RequestLimits;
    /** The queue bound; null when the server does not bound its queue. */
    rerankdAdmission: Admission | null;
  }
}

export interface RequestCallContext {
  requestId: string;
  signal: AbortSignal;
  admission: Admission | null;
}

/** The request's cancellation: aborted when the client goes away or its deadline passes. */
export function callContext(request: FastifyRequest, reply: FastifyReply): RequestCallContext {
  const controller = new AbortController();
  const timeoutMs = request.server.rerankdLimits?.requestTimeoutMs ?? 0;
  let timer: NodeJS.Timeout | null = null;
  if (timeoutMs > 0) {
    // The deadline counts from the request's arrival, body upload and parsing included.
    const remaining = Math.max(0, timeoutMs - reply.elapsedTime);
    timer = setTimeout(() => controller.abort(new CancelledError("deadline")), remaining);
    timer.unref();
  }
  reply.raw.once("close", () => {
    if (timer) clearTimeout(timer);
    if (!reply.raw.writableFinished) controller.abort(new CancelledError("client-closed"));
  });
  return { requestId: request.id, signal: controller.signal, admission: request.server.rerankdAdmission ?? null };
}
