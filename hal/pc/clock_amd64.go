package pc

import "math/bits"

const pitHz = 1193182 // PIT input clock (Intel 8254)

var (
	tscHz   uint64
	tscMult uint64 // ns = delta*tscMult >> 32
	tsc0    uint64
	wall0   int64 // Unix ns at tsc0
)

// clockInit calibrates the TSC against the PIT and reads the wall clock
// from the CMOS real-time clock.
func clockInit() {
	tscHz = pitLatchHz()
	if tscHz == 0 {
		// The host never let a 20 ms stretch run undisturbed: fall back
		// to the processor's nominal frequency (CPUID leaf 0x16), or 1 GHz.
		puts("anyk: TSC calibration failed; clocks may run at the wrong rate\n")
		tscHz = 1e9
		if top, _, _, _ := cpuid(0, 0); top >= 0x16 {
			if mhz, _, _, _ := cpuid(0x16, 0); mhz != 0 {
				tscHz = uint64(mhz) * 1e6
			}
		}
	}
	hi, lo := bits.Mul64(1e9, 1<<32)
	tscMult, _ = bits.Div64(hi, lo, tscHz)
	wall := rtcNow()
	tsc0 = rdtsc()
	wall0 = wall
}

// pitLatchHz measures the TSC frequency against PIT channel 0 running down
// from 65535 (55 ms), reading its count back (latch command) together with
// the TSC at both ends of a 20 ms stretch. Only those two readings matter:
// the host descheduling the guest in between costs nothing, and each
// reading is the tightest-bracketed of several; a stretch during which the
// count wrapped is detected and measured again. (Channel 0's terminal count
// leaves a timer interrupt pending, which the scheduler takes as a tick.)
func pitLatchHz() uint64 {
	const window = pitHz * 20 / 1000
	for try := 0; try < 20; try++ {
		outb(0x43, 0x30) // channel 0, lo/hi byte, mode 0
		outb(0x40, 0xFF)
		outb(0x40, 0xFF)
		for c := pitCount0(); c == 0 || c > 0xFFF0; c = pitCount0() {
		}
		tA, cA := pitSample()
		for c := pitCount0(); c <= cA && uint64(cA-c) < window; c = pitCount0() {
		}
		tB, cB := pitSample()
		// In mode 0 the output goes high when the count passes zero and
		// stays high: if it is, the count wrapped (the guest was held for
		// more than 55 ms) and the difference means nothing.
		outb(0x43, 0xE2) // read-back: status of channel 0
		if inb(0x40)&0x80 != 0 || cB >= cA || uint64(cA-cB) < window {
			continue
		}
		return (tB - tA) * pitHz / uint64(cA-cB)
	}
	return 0
}

// pitSample reads the TSC and PIT channel 0's count as close together as
// it can: the best of several tries.
func pitSample() (tsc uint64, count uint16) {
	best := ^uint64(0)
	for i := 0; i < 5; i++ {
		t1 := rdtsc()
		c := pitCount0()
		t2 := rdtsc()
		if t2-t1 < best {
			best = t2 - t1
			tsc, count = t1+(t2-t1)/2, c
		}
	}
	return tsc, count
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
