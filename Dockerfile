# Multi-stage build: a static binary on a distroless base, running as non-root.
# Configure with TRIALSD_* environment variables (see config.yaml).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The release comes from the VERSION file; the commit from the .git copied
# in, or, when the context has none, --build-arg COMMIT=$(git rev-parse --short HEAD).
ARG COMMIT=""
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.commit=${COMMIT}" -o /out/trialsd ./cmd/trialsd

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/trialsd /usr/local/bin/trialsd
COPY config.yaml /etc/trialsd/config.yaml
ENV TRIALSD_CONFIG=/etc/trialsd/config.yaml \
    TRIALSD_HTTP_ADDR=0.0.0.0:4800
USER nonroot:nonroot
EXPOSE 4800
ENTRYPOINT ["/usr/local/bin/trialsd"]
CMD ["serve", "--migrate"]
