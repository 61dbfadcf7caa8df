# certgate in a container: a build stage with the Rust toolchain, then a slim runtime image
# that runs as an unprivileged user with its state (keys, CA, enrollment) on a volume.
#
#   docker build -t certgate .
#   # Zero-config quickstart (demo CA, alice's certificate in the volume):
#   docker run --rm --stop-timeout 15 -p 127.0.0.1:9443:9443 -e CERTGATE__LISTEN__MTLS=0.0.0.0:9443 \
#     -v certgate-data:/data certgate
#   # With your configuration (its listen.* addresses must not be 127.0.0.1 inside a
#   # container, and proxy.trusted must name the proxy's address on the Docker network;
#   # the metrics listener stays on the container's loopback unless you set
#   # CERTGATE__LISTEN__METRICS=0.0.0.0:9190 and publish it only where Prometheus reaches it):
#   docker run -d --stop-timeout 15 -p 9180:9180 -v certgate-data:/data \
#     -v /etc/certgate:/etc/certgate:ro certgate serve --config /etc/certgate/certgate.toml
#   docker kill -s HUP <container>     # reload users, client CA, CRLs and rules

FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY templates templates
COPY static static
COPY config config
RUN cargo build --profile release-lto --locked --bin certgate \
 && install -m 0755 target/release-lto/certgate /usr/local/bin/certgate

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin certgate \
 && mkdir -p /data && chown certgate:certgate /data && chmod 0700 /data
COPY --from=build /usr/local/bin/certgate /usr/local/bin/certgate
COPY config/certgate.example.toml /usr/share/certgate/certgate.example.toml
USER certgate
WORKDIR /data
VOLUME ["/data"]
# Inside a container the proxy reaches certgate over the container network, not loopback.
ENV CERTGATE_DATA_DIR=/data \
    CERTGATE__LISTEN__HTTP=0.0.0.0:9180 \
    CERTGATE_LOG_FORMAT=json
EXPOSE 9180 9443
# SIGTERM (docker stop) lets requests in flight finish (10 s at most) before the process
# exits: give docker stop longer (--stop-timeout 15).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/certgate"]
CMD ["serve"]
