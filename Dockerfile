# Tollgate gateway image. Multi-stage: dependencies (with the native SQLite addon) are installed
# in a builder with a toolchain; the runtime image is slim and runs as a non-root user.
# 20.20.2 or later: `tollgate serve` refuses older Node.js releases (src/node-floor.ts)
FROM node:20.20.2-bookworm-slim AS deps
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
COPY scripts ./scripts
RUN npm ci --omit=dev --no-audit --no-fund

FROM node:20.20.2-bookworm-slim
ENV NODE_ENV=production TOLLGATE_CONFIG=/etc/tollgate/tollgate.yaml
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl && rm -rf /var/lib/apt/lists/* \
 && groupadd --system tollgate && useradd --system --gid tollgate --home /var/lib/tollgate tollgate \
 && mkdir -p /var/lib/tollgate /etc/tollgate && chown tollgate:tollgate /var/lib/tollgate
COPY --from=deps /app/node_modules ./node_modules
COPY package.json tsconfig.json ./
COPY bin ./bin
COPY src ./src
COPY schema ./schema
# The example configuration, consistent on its own: org.yaml's kubernetes connections name their
# CA files (ca: certs/eks-*-ca.pem; the gateway refuses to start when one is missing), and
# prices.yaml is also the table used when the configured prices file does not exist.
COPY org.yaml tollgate.yaml prices.yaml ./
COPY policies ./policies
COPY certs/eks-*-ca.pem ./certs/
USER tollgate
# The proxy and admin listeners; bind them to 0.0.0.0 in /etc/tollgate/tollgate.yaml inside a container.
EXPOSE 3128 9090
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s CMD curl -fsS http://127.0.0.1:9090/healthz || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "bin/tollgate"]
CMD ["serve"]
