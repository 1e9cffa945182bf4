package pc

import "math/bits"

const pitHz = 1193182 // PIT input clock (Intel 8254)

var (
	tscHz   uint64
	tscMult uint64 // ns = delta*tscMult >> 32
	tsc0    uint64
	wall0   int64 // Unix ns at tsc0
)

// clockInit calibrates the TSC against PIT channel 2 and reads the wall
// clock from the CMOS real-time clock. Anything that delays the guest
// during a calibration window (the host descheduling it) can only lengthen
// the TSC interval measured, so the shortest of several windows is kept.
func clockInit() {
	const ms, runs = 5, 3
	if inb(0x61) == 0xFF {
		// No port 0x61 (QEMU's microvm): no channel-2 gate to poll.
		tscHz = pitLatchHz(ms)
	} else {
		best := ^uint64(0)
		for i := 0; i < runs; i++ {
			if d := pitWindow(pitHz * ms / 1000); d < best {
				best = d
			}
		}
		tscHz = best * 1000 / ms
	}
	if tscHz == 0 {
		tscHz = 1e9
	}
	hi, lo := bits.Mul64(1e9, 1<<32)
	tscMult, _ = bits.Div64(hi, lo, tscHz)
	wall := rtcNow()
	tsc0 = rdtsc()
	wall0 = wall
}

// pitWindow counts TSC ticks while PIT channel 2 counts down count input
// clocks.
func pitWindow(count uint64) uint64 {
	outb(0x61, inb(0x61)&^0x03) // gate off: the count loads but does not run
	outb(0x43, 0xB0)            // channel 2, lo/hi byte, mode 0
	outb(0x42, uint8(count&0xFF))
	outb(0x42, uint8(count>>8))
	t0 := rdtsc()
	outb(0x61, inb(0x61)|0x01) // gate on: counting starts
	for inb(0x61)&0x20 == 0 {
	}
	return rdtsc() - t0
}

// pitLatchHz measures the TSC frequency against PIT channel 0 by reading
// its count back (latch command) while it runs down, over windows of ms
// milliseconds; it returns the median of three. Channel 0's terminal count
// leaves a timer interrupt pending, which the scheduler takes as a tick.
func pitLatchHz(ms uint64) uint64 {
	var hz [3]uint64
	for i := range hz {
		outb(0x43, 0x30) // channel 0, lo/hi byte, mode 0
		outb(0x40, 0xFF)
		outb(0x40, 0xFF)
		c0 := pitCount0()
		for c0 == 0xFFFF || c0 == 0 {
			c0 = pitCount0()
		}
		t0 := rdtsc()
		want := pitHz * ms / 1000
		c := c0
		for uint64(c0-c) < want && c <= c0 {
			c = pitCount0()
		}
		t1 := rdtsc()
		if c > c0 || c0 == c {
			continue
		}
		hz[i] = (t1 - t0) * pitHz / uint64(c0-c)
	}
	if hz[0] > hz[1] {
		hz[0], hz[1] = hz[1], hz[0]
	}
	if hz[1] > hz[2] {
		hz[1], hz[2] = hz[2], hz[1]
	}
	if hz[0] > hz[1] {
		hz[0], hz[1] = hz[1], hz[0]
	}
	return hz[1]
}

// pitCount0 reads PIT channel 0's current count.
func pitCount0() uint16 {
	outb(0x43, 0x00) // latch channel 0
	lo := inb(0x40)
	hi := inb(0x40)
	return uint16(hi)<<8 | uint16(lo)
}

func nanotime() int64 { return tscToNs(rdtsc() - tsc0) }

func walltime() int64 { return wall0 + nanotime() }

func cmos(reg uint8) uint8 {
	outb(0x70, reg)
	return inb(0x71)
}

func bcd(v uint8) int64 { return int64(v>>4)*10 + int64(v&15) }

// rtcNow reads the CMOS clock (MC146818) as Unix nanoseconds.
func rtcNow() int64 {
	var a, b [7]uint8
	read := func(r *[7]uint8) {
		for cmos(0x0A)&0x80 != 0 { // update in progress
		}
		r[0], r[1], r[2], r[3], r[4], r[5], r[6] = cmos(0), cmos(2), cmos(4), cmos(7), cmos(8), cmos(9), cmos(0x32)
	}
	read(&a)
	for {
		read(&b)
		if a == b {
			break
		}
		a = b
	}
	statusB := cmos(0x0B)
	conv := func(v uint8) int64 {
		if statusB&4 != 0 {
			return int64(v)
		}
		return bcd(v)
	}
	sec, min, day, mon, year, cent := conv(a[0]), conv(a[1]), conv(a[3]), conv(a[4]), conv(a[5]), conv(a[6])
	hour := conv(a[2] & 0x7F)
	if statusB&2 == 0 && a[2]&0x80 != 0 {
		hour = (hour + 12) % 24
	}
	if cent < 19 || cent > 30 {
		cent = 20
	}
	y := cent*100 + year
	return (daysFromCivil(y, mon, day)*86400 + hour*3600 + min*60 + sec) * 1e9
}
