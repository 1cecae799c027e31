# syntax=docker/dockerfile:1
# rerankd, CPU image: docker build -t rerankd .
#
# Every build step is scripts/build-image-steps.sh, which CI also runs on its own machine
# (test/deploy/image-steps.test.ts), so the steps are tested even where no container engine is.
# Run:  docker run -p 8000:8000 -v rerankd-models:/models rerankd serve BAAI/bge-reranker-v2-gemma
ARG NODE_IMAGE=node:20-bookworm-slim

# ---- build: the app's runtime files and production dependencies ----
FROM ${NODE_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json tsconfig.json ./
COPY bin ./bin
COPY src ./src
COPY scripts/healthcheck.mjs scripts/build-image-steps.sh ./scripts/
RUN bash scripts/build-image-steps.sh install /src /app cpu

# ---- runtime: node, the app, tini; no compilers, no npm cache ----
FROM ${NODE_IMAGE}
COPY --from=build /usr/bin/tini-static /usr/bin/tini
COPY --from=build /app /app
RUN groupadd --system --gid 10001 rerankd \
 && useradd --system --uid 10001 --gid rerankd --home-dir /home/rerankd --create-home --shell /usr/sbin/nologin rerankd \
 && mkdir -p /models \
 && chown rerankd:rerankd /models \
 && ln -s /app/bin/rerankd.js /usr/local/bin/rerankd
# The model cache: Hub downloads in $HF_HOME/hub, converted GGUF files in $HF_HOME/rerankd.
# Mount a volume here so a restarted container does not download and convert again.
ENV NODE_ENV=production \
    HF_HOME=/models/huggingface \
    RERANKD_HEALTH_URL=http://127.0.0.1:8000/health
VOLUME ["/models"]
USER 10001:10001
WORKDIR /home/rerankd
# The final image runs, as the user it runs as: --version, --help, llama.cpp's binding loads.
RUN bash /app/scripts/build-image-steps.sh smoke /app \
 && rm -rf /tmp/tsx-*
EXPOSE 8000
# A first start downloads (~5 GB) and converts the model: the start period allows for it.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20m --retries=3 CMD ["node", "/app/scripts/healthcheck.mjs"]
# tini as PID 1 forwards SIGTERM to rerankd (which drains: in-flight requests finish, /health
# answers 503, then exit 0) and reaps zombies.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/app/bin/rerankd.js"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
