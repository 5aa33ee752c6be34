package db

import (
	"context"

	"github.com/exaring/otelpgx"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/multitracer"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// AttrTenantID is the span attribute naming the tenant (a UUID) whose
// scope a unit of work ran in; the HTTP server span carries it too.
const AttrTenantID = attribute.Key("rowfence.tenant_id")

// Trace makes the pool built from cfg record an OpenTelemetry span for each
// statement, batch (a unit of work's first round trip) and connection
// acquire, as children of the span in the caller's context, through the
// well-kept otelpgx. Spans carry the SQL text (sqlc's, with placeholders)
// and, for scoped work, the tenant id; never the parameter values, where
// credentials' hashes and tenants' data travel. A nil tp leaves cfg as it
// is: tracing is off and costs nothing. Call it before GuardConnects, which
// composes its own tracer with cfg's.
func Trace(cfg *pgxpool.Config, tp trace.TracerProvider) {
	if tp == nil {
		return
	}
	t := tenantTracer{otelpgx.NewTracer(otelpgx.WithTracerProvider(tp))}
	if cfg.ConnConfig.Tracer == nil {
		cfg.ConnConfig.Tracer = t
	} else {
		cfg.ConnConfig.Tracer = multitracer.New(cfg.ConnConfig.Tracer, t)
	}
}

// tenantTracer adds the tenant of the unit of work (withScope) to
// otelpgx's spans.
type tenantTracer struct{ *otelpgx.Tracer }

type scopeKey struct{}

// withScope tells the tracer the scope's tenant, only when a span is
// recording: with tracing off the context is left as it is.
func withScope(ctx context.Context, s Scope) context.Context {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return ctx
	}
	return context.WithValue(ctx, scopeKey{}, s.TenantID)
}

func tagTenant(ctx context.Context) context.Context {
	if id, ok := ctx.Value(scopeKey{}).(uuid.UUID); ok {
		trace.SpanFromContext(ctx).SetAttributes(AttrTenantID.String(id.String()))
	}
	return ctx
}

func (t tenantTracer) TraceQueryStart(ctx context.Context, conn *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	return tagTenant(t.Tracer.TraceQueryStart(ctx, conn, data))
}

func (t tenantTracer) TraceBatchStart(ctx context.Context, conn *pgx.Conn, data pgx.TraceBatchStartData) context.Context {
	return tagTenant(t.Tracer.TraceBatchStart(ctx, conn, data))
}
