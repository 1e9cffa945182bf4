package netstack

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// ICMP echo message types (RFC 792, RFC 4443 §4).
const (
	icmpv4EchoRequest = 8
	icmpv4EchoReply   = 0
	icmpv6EchoRequest = 128
	icmpv6EchoReply   = 129
	icmpEchoHeaderLen = 8
)

// Ping sends one ICMP echo request with payload to dst and waits for the
// matching reply, returning the round-trip time on the stack's clock. The
// context bounds the wait.
func (st *Stack) Ping(ctx context.Context, dst netip.Addr, seq uint16, payload []byte) (time.Duration, error) {
	raddr := &net.IPAddr{IP: dst.AsSlice(), Zone: dst.Zone()}
	fail := func(err error) (time.Duration, error) { return 0, opErr("ping", "ip", nil, raddr, err) }
	full, err := st.fullAddr(dst, 0)
	if err != nil {
		return fail(err)
	}
	proto, reqType, replyType := icmp.ProtocolNumber4, byte(icmpv4EchoRequest), byte(icmpv4EchoReply)
	if !dst.Unmap().Is4() {
		proto, reqType, replyType = icmp.ProtocolNumber6, icmpv6EchoRequest, icmpv6EchoReply
	}
	wq := new(waiter.Queue)
	ep, terr := st.s.NewEndpoint(proto, protoOf(dst.Unmap()), wq)
	if terr != nil {
		return fail(sysErr("socket", terr))
	}
	defer ep.Close()
	e, notify := waiter.NewChannelEntry(waiter.ReadableEvents)
	wq.EventRegister(&e)
	defer wq.EventUnregister(&e)

	msg := make([]byte, icmpEchoHeaderLen+len(payload))
	msg[0] = reqType
	binary.BigEndian.PutUint16(msg[6:], seq)
	copy(msg[icmpEchoHeaderLen:], payload)
	start := st.clock.Monotonic()
	var r bytes.Reader
	for {
		r.Reset(msg)
		_, terr := ep.Write(&r, tcpip.WriteOptions{To: &full})
		if terr == nil {
			break
		}
		if _, ok := terr.(*tcpip.ErrWouldBlock); !ok {
			return fail(sysErr("sendto", terr))
		}
		select {
		case <-ctx.Done():
			return fail(ctxErr(ctx.Err()))
		case <-time.After(time.Millisecond):
		}
	}
	buf := make([]byte, len(msg)+64)
	for {
		w := tcpip.SliceWriter(buf)
		res, terr := ep.Read(&w, tcpip.ReadOptions{})
		switch terr.(type) {
		case nil:
			got := buf[:res.Count]
			if len(got) >= icmpEchoHeaderLen && got[0] == replyType &&
				binary.BigEndian.Uint16(got[6:]) == seq && bytes.Equal(got[icmpEchoHeaderLen:], payload) {
				return st.clock.Monotonic() - start, nil
			}
		case *tcpip.ErrWouldBlock:
			select {
			case <-ctx.Done():
				return fail(ctxErr(ctx.Err()))
			case <-notify:
			}
		default:
			return fail(sysErr("recvfrom", terr))
		}
	}
}
