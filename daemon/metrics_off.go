//go:build nometrics

package daemon

import (
	"context"
	"errors"
	"net"
	"sync"
)

// errNoMetrics refuses [daemon] metrics in a build without the Prometheus
// client, which adds about 3.4 MB to the binary: `go build -tags
// nometrics` is for routers with little flash.
var errNoMetrics = errors.New("this portknockd was built without metrics (-tags nometrics); remove the metrics key")

// serveMetrics is never called: listenObservers refuses the key first.
func serveMetrics(context.Context, *Daemon, net.Listener, *sync.WaitGroup) {}
