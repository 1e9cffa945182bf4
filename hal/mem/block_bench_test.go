package mem

import (
	"math/rand/v2"
	"testing"

	"github.com/anykernel/anykernel/hal"
)

const blockBenchSize = 64 << 20

// blockBenchDevices makes the devices the benchmarks run on, filled with
// data so reads touch allocated memory.
var blockBenchDevices = []struct {
	name string
	make func(b *testing.B) hal.BlockDevice
}{
	{"ref-block", func(b *testing.B) hal.BlockDevice { return blockBenchDisk(b) }},
	{"crash-recorder", func(b *testing.B) hal.BlockDevice {
		r, err := NewCrashRecorder(blockBenchDisk(b))
		if err != nil {
			b.Fatal(err)
		}
		return r
	}},
}

func blockBenchDisk(b *testing.B) *Block {
	d, err := NewBlockFromImage(blockTestPattern(1, blockBenchSize), BlockOptions{})
	if err != nil {
		b.Fatal(err)
	}
	return d
}

// crashBenchLimit bounds the memory a recorder's log may take during a
// benchmark: past it the recorder is replaced, off the clock.
const crashBenchLimit = 256 << 20

func BenchmarkBlockIO(b *testing.B) {
	patterns := []struct {
		name   string
		size   int
		random bool
		write  bool
	}{
		{"SeqRead1MiB", 1 << 20, false, false},
		{"SeqWrite1MiB", 1 << 20, false, true},
		{"RandRead4KiB", 4 << 10, true, false},
		{"RandWrite4KiB", 4 << 10, true, true},
	}
	// The bare RAM disk is the reference for each workload: the table printed
	// by make bench shows the crash recorder's cost as a ratio.
	for _, pat := range patterns {
		for _, dev := range blockBenchDevices {
			b.Run(pat.name+"/"+dev.name, func(b *testing.B) {
				d := dev.make(b)
				buf := blockTestPattern(2, pat.size)
				rng := rand.New(rand.NewPCG(3, 3))
				slots := int64(blockBenchSize / pat.size)
				var off, logged int64
				b.SetBytes(int64(pat.size))
				b.ReportAllocs()
				for b.Loop() {
					if pat.random {
						off = rng.Int64N(slots) * int64(pat.size)
					} else {
						off = (off + int64(pat.size)) % blockBenchSize
					}
					var err error
					if pat.write {
						_, err = d.WriteAt(buf, off)
						logged += int64(pat.size)
					} else {
						_, err = d.ReadAt(buf, off)
					}
					if err != nil {
						b.Fatal(err)
					}
					if _, ok := d.(*CrashRecorder); ok && logged >= crashBenchLimit {
						b.StopTimer()
						d.Close()
						d = dev.make(b)
						logged = 0
						b.StartTimer()
					}
				}
				d.Close()
			})
		}
	}
}

// BenchmarkCrashImage measures building a 64 MiB crash image from a log of
// 4096 random 4 KiB writes with a sync every 64.
func BenchmarkCrashImage(b *testing.B) {
	r, err := NewCrashRecorder(blockBenchDisk(b))
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(4, 4))
	buf := blockTestPattern(5, 4096)
	for i := range 4096 {
		if _, err := r.WriteAt(buf, rng.Int64N(blockBenchSize/4096)*4096); err != nil {
			b.Fatal(err)
		}
		if i%64 == 63 {
			if err := r.Sync(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.SetBytes(blockBenchSize)
	b.ReportAllocs()
	seed := uint64(0)
	for b.Loop() {
		seed++
		if _, err := r.CrashImage(r.Ops()-10, seed); err != nil {
			b.Fatal(err)
		}
	}
}
