package daemon

import (
	"context"
	"fmt"
	"net"
	"sync"
)

// observers are the two ways to watch a running daemon from outside: the
// Prometheus metrics over HTTP and the status socket. Both only read.
type observers struct {
	metricsLn net.Listener // nil when [daemon] metrics is unset
	status    *statusListener
}

// listenObservers binds the metrics address and the status socket, so
// that a port in use stops the start before anything runs. The status
// socket is an aid, not a duty: when it cannot be made the daemon says
// why and runs without it.
func (d *Daemon) listenObservers() error {
	if addr := d.running.Metrics; addr != "" {
		if errNoMetrics != nil {
			return fmt.Errorf("metrics: %w", errNoMetrics)
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		d.obs.metricsLn = ln
	}
	if d.opts.Status {
		st, err := listenStatus(d.running.StateDir)
		if err != nil {
			d.log.Error("status socket not served; portknockd status will not reach this daemon", "err", err)
		} else {
			d.obs.status = st
		}
	}
	return nil
}

// MetricsAddr is the address the metrics are served on, nil when they
// are not: with port 0 in the configuration, the port the system chose.
func (d *Daemon) MetricsAddr() net.Addr {
	if d.obs.metricsLn == nil {
		return nil
	}
	return d.obs.metricsLn.Addr()
}

// serve serves the observers until ctx ends or the returned function is
// called, which waits for them to stop.
func (o *observers) serve(ctx context.Context, d *Daemon) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	if o.metricsLn != nil {
		serveMetrics(ctx, d, o.metricsLn, &wg)
	}
	if o.status != nil {
		wg.Go(func() { o.status.serve(ctx, d) })
	}
	return func() {
		cancel()
		wg.Wait()
		o.close()
	}
}

// close releases what listenObservers took, for a start that fails
// after it, and after serving.
func (o *observers) close() {
	if o.metricsLn != nil {
		o.metricsLn.Close()
	}
	if o.status != nil {
		o.status.close()
	}
}
