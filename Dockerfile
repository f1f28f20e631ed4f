# presence-gateway container image.
#
#   docker build -t presence-gateway .
#   docker run --rm -p 8080:8080 -e PRESENCE_JWT_SECRET=change-me presence-gateway
#
# The cache mounts below need BuildKit (the default builder since Docker 23).

# ---- build -------------------------------------------------------------------------------------
FROM rust:1.95-bookworm AS builder
WORKDIR /build

# The workspace has two members, "." and "loadtest". Both manifests and sources must be present
# for cargo to resolve it, even though only the gateway is built. config/default.toml and the
# board's client library (clients/js/src, served at /board/) are compiled into the binary
# (include_str!).
COPY Cargo.toml Cargo.lock ./
COPY loadtest/Cargo.toml loadtest/Cargo.toml
COPY loadtest/src loadtest/src
COPY config config
COPY clients/js/src clients/js/src
COPY src src

# The same build as `cargo build --release` in the README, pinned to Cargo.lock. The target
# directory is a cache mount, so the binary is copied out of it in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/build/target \
    cargo build --release --locked -p presence-gateway \
 && install -D -m 0755 target/release/presence-gateway /out/presence-gateway

# ---- runtime -----------------------------------------------------------------------------------
FROM debian:bookworm-slim

# ca-certificates for outgoing TLS (https webhook targets); curl for the HEALTHCHECK.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 gateway \
 && useradd --system --uid 10001 --gid gateway --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin gateway

COPY --from=builder /out/presence-gateway /usr/local/bin/presence-gateway
# For reference only: the defaults are compiled in. Pass --config FILE (or PRESENCE_CONFIG) to
# layer a file of your own over them.
COPY config/ /etc/presence-gateway/

ENV PRESENCE_LISTEN=0.0.0.0:8080
EXPOSE 8080
USER 10001:10001

# Assumes the default port; override it together with PRESENCE_LISTEN.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1

ENTRYPOINT ["presence-gateway"]
