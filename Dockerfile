# syntax=docker/dockerfile:1
#
# Small static images of the two programs, one image per binary:
#
#   docker build --build-arg BIN=pravega-operator -t ghcr.io/pravega-upgrade/pravega-operator:0.1.0 .
#   docker build --build-arg BIN=pravega-webhook  -t ghcr.io/pravega-upgrade/pravega-webhook:0.1.0 .
#
# The binary is linked statically against musl (ring's C and assembly parts are built with
# musl-gcc) and runs as the non-root user 65532 on distroless/static, which has no shell and no
# package manager. The image's entrypoint is the binary, so the Deployments only pass args.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION} AS build
ENV RUST_TARGET=x86_64-unknown-linux-musl \
    CC_x86_64_unknown_linux_musl=musl-gcc
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add "$RUST_TARGET"
WORKDIR /src
COPY . .
ARG BIN
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,sharing=locked \
    case "$BIN" in \
      pravega-operator|pravega-webhook) ;; \
      *) echo "build with --build-arg BIN=pravega-operator or --build-arg BIN=pravega-webhook (got '$BIN')" >&2; exit 1 ;; \
    esac \
 && cargo build --release --locked --target "$RUST_TARGET" -p "$BIN" --bin "$BIN" \
 && mkdir -p /out/usr/local/bin \
 && cp "target/$RUST_TARGET/release/$BIN" /out/usr/local/bin/ \
 && ln -s "/usr/local/bin/$BIN" /out/entrypoint

FROM gcr.io/distroless/static-debian12:nonroot
ARG BIN
LABEL org.opencontainers.image.title="$BIN" \
      org.opencontainers.image.source="https://github.com/pravega-upgrade/pravega-upgrade-operator" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/ /
USER 65532:65532
ENTRYPOINT ["/entrypoint"]
