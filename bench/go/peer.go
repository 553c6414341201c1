package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// runPeer: a compiled relay of the relay's shape without its work. It consumes pre-mapped
// Caliper JSON, POSTs each value as it is with at most -in-flight requests outstanding, retries
// until a 2xx, and commits a partition's offset only past records that all got their 2xx.
// No decoding, no mapping, no DLQ, no metrics: the limit a relay of this shape reaches here.
func runPeer(args []string) error {
	fs := flag.NewFlagSet("peer", flag.ExitOnError)
	brokers := fs.String("brokers", "127.0.0.1:9092", "bootstrap servers, comma separated")
	topic := fs.String("topic", "", "topic of serialized Caliper events")
	group := fs.String("group", "", "consumer group")
	api := fs.String("url", "", "Partner API base URL (token at /auth/1.0/token)")
	inFlight := fs.Int("in-flight", 64, "POSTs outstanding at most")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sender := newPoster(*api, *inFlight)
	if err := sender.fetchToken(ctx); err != nil {
		return err
	}
	client, err := kgo.NewClient(
		kgo.SeedBrokers(strings.Split(*brokers, ",")...),
		kgo.ConsumerGroup(*group),
		kgo.ConsumeTopics(*topic),
		kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		return err
	}
	defer client.Close()
	done := newTracker()
	go commitLoop(ctx, client, done)
	slots := make(chan struct{}, *inFlight)
	for ctx.Err() == nil {
		fetches := client.PollFetches(ctx)
		if errs := fetches.Errors(); len(errs) > 0 && ctx.Err() == nil {
			fmt.Fprintln(os.Stderr, "fetch errors:", errs)
		}
		fetches.EachRecord(func(record *kgo.Record) {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			done.add(record)
			go func() {
				defer func() { <-slots }()
				if sender.deliver(ctx, record.Value) {
					done.finish(record)
				}
			}()
		})
	}
	commit(context.Background(), client, done) // what finished within the shutdown
	return nil
}

type poster struct {
	client   *http.Client
	base     string
	token    string
	inFlight int
}

func newPoster(base string, inFlight int) *poster {
	transport := &http.Transport{MaxIdleConns: inFlight + 1, MaxIdleConnsPerHost: inFlight + 1}
	return &poster{client: &http.Client{Transport: transport, Timeout: 30 * time.Second},
		base: strings.TrimRight(base, "/"), inFlight: inFlight}
}

func (p *poster) fetchToken(ctx context.Context) error {
	form := url.Values{"grant_type": {"client_credentials"}}
	request, _ := http.NewRequestWithContext(ctx, http.MethodPost, p.base+"/auth/1.0/token",
		strings.NewReader(form.Encode()))
	request.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	request.SetBasicAuth(os.Getenv("BENCH_CLIENT_ID"), os.Getenv("BENCH_CLIENT_SECRET"))
	response, err := p.client.Do(request)
	if err != nil {
		return err
	}
	defer response.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(response.Body).Decode(&body); err != nil || body.AccessToken == "" {
		return fmt.Errorf("token endpoint answered %d without an access_token", response.StatusCode)
	}
	p.token = body.AccessToken
	return nil
}

// deliver POSTs until a 2xx (false only when ctx ends first: the record is not committed).
func (p *poster) deliver(ctx context.Context, value []byte) bool {
	for backoff := 50 * time.Millisecond; ctx.Err() == nil; backoff = min(2*backoff, 2*time.Second) {
		request, _ := http.NewRequestWithContext(ctx, http.MethodPost, p.base+"/events/1.0",
			bytes.NewReader(value))
		request.Header.Set("Content-Type", "application/json")
		request.Header.Set("Authorization", "Bearer "+p.token)
		response, err := p.client.Do(request)
		if err == nil {
			_, _ = io.Copy(io.Discard, response.Body)
			response.Body.Close()
			if response.StatusCode/100 == 2 {
				return true
			}
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
		}
	}
	return false
}

// tracker: per partition, the records handed out in offset order; the committable one is the
// last of the leading run that all finished.
type tracker struct {
	mu        sync.Mutex
	pending   map[int32][]*slot
	committed map[int32]*kgo.Record
}

type slot struct {
	record *kgo.Record
	done   bool
}

func newTracker() *tracker {
	return &tracker{pending: map[int32][]*slot{}, committed: map[int32]*kgo.Record{}}
}

func (t *tracker) add(record *kgo.Record) {
	t.mu.Lock()
	t.pending[record.Partition] = append(t.pending[record.Partition], &slot{record: record})
	t.mu.Unlock()
}

func (t *tracker) finish(record *kgo.Record) {
	t.mu.Lock()
	defer t.mu.Unlock()
	queue := t.pending[record.Partition]
	for _, s := range queue {
		if s.record == record {
			s.done = true
			break
		}
	}
	head := 0
	for head < len(queue) && queue[head].done {
		t.committed[record.Partition] = queue[head].record
		head++
	}
	t.pending[record.Partition] = queue[head:]
}

// ready takes the records to commit (one per partition) since the last call.
func (t *tracker) ready() []*kgo.Record {
	t.mu.Lock()
	defer t.mu.Unlock()
	records := make([]*kgo.Record, 0, len(t.committed))
	for partition, record := range t.committed {
		records = append(records, record)
		delete(t.committed, partition)
	}
	return records
}

func commitLoop(ctx context.Context, client *kgo.Client, done *tracker) {
	ticker := time.NewTicker(200 * time.Millisecond)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			commit(ctx, client, done)
		}
	}
}

func commit(ctx context.Context, client *kgo.Client, done *tracker) {
	if records := done.ready(); len(records) > 0 {
		if err := client.CommitRecords(ctx, records...); err != nil && ctx.Err() == nil {
			fmt.Fprintln(os.Stderr, "commit:", err)
		}
	}
}
