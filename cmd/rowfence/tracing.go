package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/rowfence/rowfence/buildinfo"
)

// startTracing returns the tracer provider that exports spans over
// OTLP/HTTP to endpoint (OTEL_EXPORTER_OTLP_ENDPOINT, a collector's base
// URL; the exporter appends /v1/traces), named service (OTEL_SERVICE_NAME),
// and stop, which flushes the spans still queued within timeout. An empty
// endpoint: nil and a no-op stop, tracing off. The exporter connects
// lazily, so an unreachable collector costs dropped spans, never a failed
// start or a slower request (spans are batched off the request path).
func startTracing(ctx context.Context, endpoint, service string, timeout time.Duration) (trace.TracerProvider, func(), error) {
	if endpoint == "" {
		return nil, func() {}, nil
	}
	// OTEL_EXPORTER_OTLP_ENDPOINT is the collector's base URL: the traces
	// go to its /v1/traces (OpenTelemetry Protocol Exporter specification,
	// "Endpoint URLs for OTLP/HTTP"). WithEndpointURL takes the full URL.
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(strings.TrimSuffix(endpoint, "/")+"/v1/traces"))
	if err != nil {
		return nil, nil, fmt.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", service),
			attribute.String("service.version", buildinfo.Get().Version))))
	return tp, func() {
		sctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		_ = tp.Shutdown(sctx)
	}, nil
}
