package sandbox

import (
	"net"
	"runtime"
	"time"

	"github.com/vishvananda/netns"
)

// DialIn connects to addr over network ("udp", "tcp") from inside the
// named namespace at path, as a container there would. The socket stays
// in that namespace whichever thread uses it later; the thread that made
// it is never unlocked, so it ends with its goroutine rather than run
// anything else in the wrong namespace.
func DialIn(path, network, addr string) (net.Conn, error) {
	var conn net.Conn
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		var h netns.NsHandle
		if h, err = netns.GetFromPath(path); err != nil {
			return
		}
		defer h.Close()
		if err = netns.Set(h); err != nil {
			return
		}
		conn, err = net.DialTimeout(network, addr, 5*time.Second)
	}()
	<-done
	return conn, err
}
