// benchgo: the benchmark's compiled helpers, one binary (built by bench/gobuild.py).
//
//	benchgo sink -addr 127.0.0.1:PORT [-latency-ms N]   accept-everything Partner API stand-in
//	benchgo load -url URL -body FILE -concurrency N -seconds S   bare client: the sink's capacity
//	benchgo peer -brokers B -topic T -group G -url URL [-in-flight 64]   compiled relay, no mapping
//
// None of these is the relay: the sink must not be what limits a measurement, the load client
// measures the sink's own capacity, and the peer is the limit line a compiled relay of the same
// shape reaches (issue 15).
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchgo sink|load|peer [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "sink":
		err = runSink(os.Args[2:])
	case "load":
		err = runLoad(os.Args[2:])
	case "peer":
		err = runPeer(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q: sink, load or peer", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchgo:", err)
		os.Exit(1)
	}
}
