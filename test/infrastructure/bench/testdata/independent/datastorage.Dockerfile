# Replayed by bench:build (variant independent): services/datastorage/Dockerfile as of ca5e67a^, before
# cache mounts. Do not update: it is the baseline of what users ran.
# datastorage: the audit-event store. Built from the repository root, as the suite files say:
#   podman build -f services/datastorage/Dockerfile --target production .
FROM golang:1.26-bookworm AS builder
WORKDIR /src
# Modules first: this layer is reused until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download
COPY services/ services/
# GOFLAGS=-cover builds the coverage-instrumented binary (E2E_COVERAGE=true).
ARG GOFLAGS=""
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags="-s -w" -o /out/datastorage ./services/datastorage

FROM debian:bookworm-slim AS production
COPY --from=builder /out/datastorage /usr/local/bin/datastorage
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/datastorage"]
