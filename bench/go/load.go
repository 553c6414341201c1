package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// runLoad POSTs one body to -url from -concurrency goroutines for -seconds (after a 0.5 s
// warm-up) and prints {"events":..,"errors":..,"seconds":..}: the sink's capacity as a client
// that costs next to nothing sees it.
func runLoad(args []string) error {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	url := fs.String("url", "", "events URL")
	bodyPath := fs.String("body", "", "file with one serialized event")
	concurrency := fs.Int("concurrency", 64, "concurrent requests")
	seconds := fs.Float64("seconds", 5, "measured duration")
	if err := fs.Parse(args); err != nil {
		return err
	}
	body, err := os.ReadFile(*bodyPath)
	if err != nil {
		return err
	}
	transport := &http.Transport{MaxIdleConns: *concurrency + 1, MaxIdleConnsPerHost: *concurrency + 1}
	client := &http.Client{Transport: transport, Timeout: 30 * time.Second}
	var done, failed atomic.Int64
	var counting, stopped atomic.Bool
	var wg sync.WaitGroup
	for i := 0; i < *concurrency; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stopped.Load() {
				request, _ := http.NewRequest(http.MethodPost, *url, bytes.NewReader(body))
				request.Header.Set("Content-Type", "application/json")
				request.Header.Set("Authorization", "Bearer bench-load")
				response, err := client.Do(request)
				ok := err == nil && response.StatusCode/100 == 2
				if err == nil {
					_, _ = io.Copy(io.Discard, response.Body)
					response.Body.Close()
				}
				if counting.Load() {
					if ok {
						done.Add(1)
					} else {
						failed.Add(1)
					}
				}
			}
		}()
	}
	time.Sleep(500 * time.Millisecond) // warm-up: connections open before the clock starts
	start := time.Now()
	counting.Store(true)
	time.Sleep(time.Duration(*seconds * float64(time.Second)))
	counting.Store(false)
	elapsed := time.Since(start).Seconds()
	stopped.Store(true)
	wg.Wait()
	return json.NewEncoder(os.Stdout).Encode(map[string]any{
		"events": done.Load(), "errors": failed.Load(), "seconds": elapsed,
	})
}
