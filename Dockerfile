# Tollgate container image: the release binary on Debian slim, run as the unprivileged `tollgate`
# user with the command line, paths and working directory of deploy/tollgate.service.
#   docker build -t tollgate .
#   docker compose -f deploy/compose.yaml up --build      # the gateway, Redis and the mock LLM
# The image ships no configuration: mount one at /etc/tollgate/tollgate.yaml. Its listeners must
# bind 0.0.0.0 (a container's 127.0.0.1 is unreachable through a published port).

FROM rust:1-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
# The manifest names the benches, so cargo needs them to read it.
COPY benches benches
COPY src src
RUN cargo build --release --locked

FROM debian:bookworm-slim
# The same account as deploy/tollgate.sysusers: a system user and group (ids from the system
# range), home /var/lib/tollgate, no login shell. The directories are those the unit creates.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --user-group --home-dir /var/lib/tollgate --no-create-home \
      --shell /usr/sbin/nologin --comment "Tollgate AI gateway" tollgate \
 && install -d -m 0750 -o tollgate -g tollgate /var/lib/tollgate /var/log/tollgate /run/tollgate \
 && install -d -m 0755 /etc/tollgate
COPY --from=build /src/target/release/tollgate /usr/local/bin/tollgate
USER tollgate
# A relative state.spend_file lands here, as under systemd.
WORKDIR /var/lib/tollgate
# The consumer plane only. The admin plane (9001 in deploy/compose.tollgate.yaml) is not published
# by default: it serves metrics, costs and reloads, and belongs on a management network.
EXPOSE 9000
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/tollgate"]
CMD ["run", "-c", "/etc/tollgate/tollgate.yaml", "--upgrade-sock", "/run/tollgate/upgrade.sock"]
