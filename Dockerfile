# syntax=docker/dockerfile:1
#
# Portcullis container image.
#
#   docker build -t ghcr.io/portcullis/portcullis:0.1.0 .
#
# Builder: the Rust toolchain on Debian 12 (bookworm), so the binary links
# against the same glibc as the runtime image. Final: distroless cc (glibc,
# libgcc, CA certificates; no shell, no package manager), running as the
# unprivileged user 65532.

FROM rust:1.95-bookworm AS builder
WORKDIR /src
# Only what `cargo build --bin portcullis` reads (build.rs lays the code
# out by build/symbol-order.txt).
COPY Cargo.toml Cargo.lock build.rs ./
COPY build ./build
COPY src ./src
# Cache mounts keep the crate registry and build directory between builds;
# the binary is copied out of the cached target directory.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin portcullis \
 && cp target/release/portcullis /usr/local/bin/portcullis

FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="portcullis" \
      org.opencontainers.image.description="Kubernetes ingress controller and key-auth API gateway in one binary" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /usr/local/bin/portcullis /portcullis
USER 65532:65532
# 8000 proxy (HTTP), 8443 proxy (TLS), 8100 admin: /healthz, /readyz, /metrics.
EXPOSE 8000 8443 8100
ENTRYPOINT ["/portcullis"]
CMD ["run"]
