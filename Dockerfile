# The serving image: a static rowfence on scratch, running as a non-root
# user. Build with `docker build -t rowfence .` (or podman), which needs the
# golang image from a registry; `make image` builds the same runtime stage
# offline around a binary the local Go toolchain made (Containerfile.local).
# README.md ("The binary", "Running rowfence in production") and docs/TLS.md
# say how to run it.
ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Default tags: the serving binary, without `rowfence dev` and the demo
# seed. CGO off: static, so it runs on scratch. .dockerignore leaves .git
# out, so `rowfence version` names no revision here; make image's does.
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/rowfence ./cmd/rowfence

# The runtime stage. Keep it identical to Containerfile.local's
# (TestImageFilesAgree).
FROM scratch
# Root certificates for TLS to PostgreSQL (sslmode=verify-full) and to
# identity providers.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/rowfence /rowfence
# 65532: the "nonroot" user of the distroless images; scratch has no
# /etc/passwd, so the number is the user.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/rowfence"]
CMD ["serve"]
