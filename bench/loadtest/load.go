package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// tenant is one tenant the load plays, with an admin key.
type tenant struct {
	ID, Slug, Key string
}

// loadConfig says how hard and how long.
type loadConfig struct {
	Base       string
	Tenants    []tenant
	Workers    int
	Duration   time.Duration
	WriteRatio float64 // share of requests that create a product
}

// report is what a run saw. ForeignRows > 0 means a tenant saw a row that
// is not its own: a leak.
type report struct {
	Requests    int            `json:"requests"`
	Seconds     float64        `json:"seconds"`
	PerSecond   float64        `json:"requests_per_second"`
	Statuses    map[string]int `json:"statuses"`
	Ops         map[string]int `json:"ops"`
	Errors      int            `json:"errors"` // transport errors and unexpected statuses
	ErrorSample []string       `json:"error_sample,omitempty"`
	ForeignRows int            `json:"foreign_rows"`
	LeakSample  []string       `json:"leak_sample,omitempty"`
	P50ms       float64        `json:"p50_ms"`
	P99ms       float64        `json:"p99_ms"`
}

type worker struct {
	cfg    loadConfig
	client *http.Client
	rng    *rand.Rand
	rep    report
	lat    []time.Duration
	// ids each tenant has created, to read back and to probe from others.
	mine map[string][]string
}

// runLoad sends mixed reads and writes for many tenants at once and checks
// every answer: each row a tenant receives must carry its own tenant_id, and
// another tenant's id must answer 404.
func runLoad(ctx context.Context, cfg loadConfig) report {
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	transport := &http.Transport{MaxIdleConnsPerHost: cfg.Workers}
	shared := &sharedIDs{byTenant: map[string][]string{}}
	workers := make([]*worker, cfg.Workers)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range workers {
		w := &worker{cfg: cfg, client: &http.Client{Transport: transport, Timeout: 10 * time.Second},
			rng: rand.New(rand.NewPCG(uint64(i), uint64(start.UnixNano()))), mine: map[string][]string{},
			rep: report{Statuses: map[string]int{}, Ops: map[string]int{}}}
		workers[i] = w
		wg.Go(func() { w.loop(ctx, shared) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	total := report{Statuses: map[string]int{}, Ops: map[string]int{}, Seconds: elapsed.Seconds()}
	var lat []time.Duration
	for _, w := range workers {
		total.Requests += w.rep.Requests
		total.Errors += w.rep.Errors
		total.ForeignRows += w.rep.ForeignRows
		for k, v := range w.rep.Statuses {
			total.Statuses[k] += v
		}
		for k, v := range w.rep.Ops {
			total.Ops[k] += v
		}
		total.ErrorSample = append(total.ErrorSample, w.rep.ErrorSample...)
		total.LeakSample = append(total.LeakSample, w.rep.LeakSample...)
		lat = append(lat, w.lat...)
	}
	total.ErrorSample = total.ErrorSample[:min(len(total.ErrorSample), 5)]
	total.LeakSample = total.LeakSample[:min(len(total.LeakSample), 5)]
	total.PerSecond = float64(total.Requests) / elapsed.Seconds()
	if len(lat) > 0 {
		slices.Sort(lat)
		total.P50ms = float64(lat[len(lat)/2].Microseconds()) / 1000
		total.P99ms = float64(lat[len(lat)*99/100].Microseconds()) / 1000
	}
	return total
}

// sharedIDs lets workers probe ids that other tenants created.
type sharedIDs struct {
	mu       sync.Mutex
	byTenant map[string][]string
}

func (s *sharedIDs) add(tenant, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ids := s.byTenant[tenant]; len(ids) < 1000 {
		s.byTenant[tenant] = append(ids, id)
	}
}

func (s *sharedIDs) foreign(rng *rand.Rand, tenant string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range 5 {
		for t, ids := range s.byTenant {
			if t != tenant && len(ids) > 0 {
				return ids[rng.IntN(len(ids))]
			}
		}
	}
	return ""
}

func (w *worker) loop(ctx context.Context, shared *sharedIDs) {
	for ctx.Err() == nil {
		t := w.cfg.Tenants[w.rng.IntN(len(w.cfg.Tenants))]
		switch r := w.rng.Float64(); {
		case r < w.cfg.WriteRatio:
			w.create(ctx, t, shared)
		case r < w.cfg.WriteRatio+0.1:
			w.probe(ctx, t, shared)
		case r < w.cfg.WriteRatio+0.3 && len(w.mine[t.ID]) > 0:
			w.get(ctx, t)
		default:
			w.list(ctx, t)
		}
	}
}

func (w *worker) do(ctx context.Context, op string, t tenant, method, path string, body []byte, want int) (map[string]any, bool) {
	req, err := http.NewRequestWithContext(ctx, method, w.cfg.Base+path, bytes.NewReader(body))
	if err != nil {
		w.fail(op, err.Error())
		return nil, false
	}
	req.Header.Set("X-Tenant-ID", t.Slug)
	req.Header.Set("Authorization", "Bearer "+t.Key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	start := time.Now()
	res, err := w.client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			w.fail(op, err.Error())
		}
		return nil, false
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if ctx.Err() != nil {
		return nil, false // cut off by the end of the run: not counted
	}
	w.lat = append(w.lat, time.Since(start))
	w.rep.Requests++
	w.rep.Ops[op]++
	w.rep.Statuses[strconv.Itoa(res.StatusCode)]++
	if err != nil || res.StatusCode != want {
		w.fail(op, fmt.Sprintf("%s %s as %s: status %d (want %d): %.200s", method, path, t.Slug, res.StatusCode, want, raw))
		return nil, false
	}
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			w.fail(op, "bad JSON: "+err.Error())
			return nil, false
		}
	}
	return out, true
}

func (w *worker) fail(op, detail string) {
	w.rep.Errors++
	if len(w.rep.ErrorSample) < 3 {
		w.rep.ErrorSample = append(w.rep.ErrorSample, op+": "+detail)
	}
}

func (w *worker) leak(t tenant, detail string) {
	w.rep.ForeignRows++
	if len(w.rep.LeakSample) < 3 {
		w.rep.LeakSample = append(w.rep.LeakSample, t.Slug+": "+detail)
	}
}

// own checks that a row belongs to t.
func (w *worker) own(t tenant, row any) {
	m, _ := row.(map[string]any)
	if m["tenant_id"] != t.ID {
		w.leak(t, fmt.Sprintf("received row %v of tenant %v", m["id"], m["tenant_id"]))
	}
}

func (w *worker) create(ctx context.Context, t tenant, shared *sharedIDs) {
	body := fmt.Appendf(nil, `{"name":"load %d","price":%d}`, w.rng.IntN(1e9), w.rng.IntN(100000))
	out, ok := w.do(ctx, "create", t, "POST", "/v1/products", body, 201)
	if !ok {
		return
	}
	w.own(t, out)
	if id, _ := out["id"].(string); id != "" {
		if ids := w.mine[t.ID]; len(ids) < 1000 {
			w.mine[t.ID] = append(ids, id)
		}
		shared.add(t.ID, id)
	}
}

func (w *worker) get(ctx context.Context, t tenant) {
	ids := w.mine[t.ID]
	id := ids[w.rng.IntN(len(ids))]
	out, ok := w.do(ctx, "get", t, "GET", "/v1/products/"+id, nil, 200)
	if ok {
		w.own(t, out)
	}
}

func (w *worker) list(ctx context.Context, t tenant) {
	out, ok := w.do(ctx, "list", t, "GET", "/v1/products?limit=20", nil, 200)
	if !ok {
		return
	}
	items, _ := out["items"].([]any)
	for _, it := range items {
		w.own(t, it)
	}
}

// probe asks for another tenant's product: it must be a 404.
func (w *worker) probe(ctx context.Context, t tenant, shared *sharedIDs) {
	id := shared.foreign(w.rng, t.ID)
	if id == "" {
		w.list(ctx, t)
		return
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", w.cfg.Base+"/v1/products/"+id, nil)
	req.Header.Set("X-Tenant-ID", t.Slug)
	req.Header.Set("Authorization", "Bearer "+t.Key)
	start := time.Now()
	res, err := w.client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			w.fail("probe", err.Error())
		}
		return
	}
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if ctx.Err() != nil {
		return
	}
	w.lat = append(w.lat, time.Since(start))
	w.rep.Requests++
	w.rep.Ops["probe"]++
	w.rep.Statuses[strconv.Itoa(res.StatusCode)]++
	switch res.StatusCode {
	case 404:
	case 200:
		w.leak(t, fmt.Sprintf("read another tenant's product %s: %.200s", id, raw))
	default:
		w.fail("probe", fmt.Sprintf("status %d: %.200s", res.StatusCode, raw))
	}
}
