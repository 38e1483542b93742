# Replayed by bench:build (variant independent): services/aianalysis/Dockerfile as of ca5e67a^, before
# cache mounts. Do not update: it is the baseline of what users ran.
# aianalysis: the AIAnalysis controller. Built from the repository root, as the suite files say:
#   podman build -f services/aianalysis/Dockerfile --target production .
FROM golang:1.26-bookworm AS builder
WORKDIR /src
# Modules first: this layer is reused until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download
COPY services/ services/
# GOFLAGS=-cover builds the coverage-instrumented binary (E2E_COVERAGE=true).
ARG GOFLAGS=""
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags="-s -w" -o /out/aianalysis ./services/aianalysis

FROM debian:bookworm-slim AS production
COPY --from=builder /out/aianalysis /usr/local/bin/aianalysis
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/aianalysis"]
