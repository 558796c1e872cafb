# beyond-pg in a container (local development, CI): the same program and boot path as the VM
# image, as PID 1 of the container. It notices it is in a container (no mounts, no network
# setup, no metadata service; settings from the environment) and exits with the database.
#
#   deno task build
#   docker build -t beyond-pg .
#   docker run --rm -e POSTGRES_PASSWORD=secret -p 5432:5432 -p 5433:5433 beyond-pg
FROM debian:bookworm-slim
RUN echo "create_main_cluster = false" > /tmp/createcluster.conf \
 && mkdir -p /etc/postgresql-common && mv /tmp/createcluster.conf /etc/postgresql-common/ \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      postgresql-15 postgresql-contrib pgbouncer openssl ca-certificates procps iproute2 libeatmydata1 \
      postgresql-15-cron postgresql-15-partman postgresql-15-hypopg postgresql-15-repack \
 && rm -rf /var/lib/apt/lists/*
COPY dist/ /usr/local/lib/beyond-pg/
COPY conf/ /etc/beyond-pg/
RUN ln -s /usr/local/lib/beyond-pg/beyond-pg /usr/local/bin/beyond-pg \
 && mkdir -p /etc/postgresql/15/main/hooks/pre-start.d /etc/postgresql/15/main/hooks/post-start.d \
      /etc/postgresql/15/main/hooks/pre-stop.d /etc/postgresql/15/main/hooks/pre-fork.d \
 && BEYOND_PG_SEED_DIR=/usr/lib/beyond-pg/seed BEYOND_PG_RUN_DIR=/tmp/seed-run \
      BEYOND_PG_SOCKET_DIR=/tmp/seed-sock BEYOND_PG_DATA_ROOT=/tmp/seed-unused beyond-pg seed \
 && rm -rf /tmp/seed-*
ENV BEYOND_PG_PLATFORM=container BEYOND_PG_LISTEN_ADDR=0.0.0.0
VOLUME /var/lib/postgresql/15
EXPOSE 5432 5433
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/beyond-pg"]
