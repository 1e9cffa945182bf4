package mem_test

import (
	"fmt"

	"github.com/anykernel/anykernel/hal"
	"github.com/anykernel/anykernel/hal/mem"
)

// Two NICs back to back, one of them losing a fifth of what it sends.
func ExampleNewNICPair() {
	a, b := mem.NewNICPair(mem.NICOptions{MAC: hal.MAC{0x02, 0, 0, 0, 0, 0x10}})
	lossy := mem.NewFaultyNIC(a, mem.NICFaults{Seed: 1, Loss: 0.2})
	defer lossy.Close()
	defer b.Close()

	dst, src := b.MAC(), a.MAC()
	frame := make([]byte, 60)
	copy(frame[0:6], dst[:])
	copy(frame[6:12], src[:])
	frame[12], frame[13] = 0x88, 0xb5
	for range 1000 {
		if err := lossy.WriteFrame(frame); err != nil {
			fmt.Println(err)
			return
		}
	}
	st := lossy.Stats()
	fmt.Println(a.MAC(), "->", b.MAC())
	fmt.Println("sent + lost =", a.Stats().FramesOut+st.Lost)
	// Output:
	// 02:00:00:00:00:10 -> 02:00:00:00:00:11
	// sent + lost = 1000
}
