# Multi-stage build: a static notifyrelay binary on a minimal image, running as a
# non-root user with its Badger data in the /data volume.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/notifyrelay ./cmd/notifyrelay
RUN mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/notifyrelay /usr/local/bin/notifyrelay
COPY --from=build --chown=nonroot:nonroot /out/data /data
COPY configs/notifyrelay.yaml /etc/notifyrelay/notifyrelay.yaml
USER nonroot:nonroot
VOLUME ["/data"]
EXPOSE 8080 9090
# In a container the listener must not be loopback: give auth.tokens in the config
# (or pass --insecure for a trusted network only).
ENTRYPOINT ["/usr/local/bin/notifyrelay", "serve", "--data-dir", "/data", "--listen", "0.0.0.0:8080"]
