package main

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"
)

// sinkStats: what the sink has accepted, read by the benchmark at GET /stats.
type sinkStats struct {
	events atomic.Int64
	bytes  atomic.Int64
	tokens atomic.Int64
}

// runSink answers the token endpoint and POST /events/1.0 (202), everything else 200 "{}".
// No validation, no storage: its capacity must exceed what any client here can send.
func runSink(args []string) error {
	fs := flag.NewFlagSet("sink", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	latencyMs := fs.Float64("latency-ms", 0, "fixed delay before each events reply")
	if err := fs.Parse(args); err != nil {
		return err
	}
	latency := time.Duration(*latencyMs * float64(time.Millisecond))
	stats := &sinkStats{}
	token := []byte(`{"access_token":"bench-sink-token","token_type":"Bearer","expires_in":3600}`)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /auth/1.0/token", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		stats.tokens.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(token)
	})
	mux.HandleFunc("POST /events/1.0", func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		if latency > 0 {
			time.Sleep(latency)
		}
		stats.events.Add(1)
		stats.bytes.Add(n)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"status":"accepted"}`))
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"events": stats.events.Load(), "bytes": stats.bytes.Load(),
			"tokens": stats.tokens.Load(), "at": float64(time.Now().UnixNano()) / 1e9,
		})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("{}"))
	})
	listener, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	server := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = server.Shutdown(shutdown)
	}()
	if err := server.Serve(listener); err != http.ErrServerClosed {
		return err
	}
	return nil
}
