package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCheckKernelCode(t *testing.T) {
	const head = "TEXT github.com/anykernel/anykernel/hal/pc.trap(SB) /x/kernel.go\n"
	tests := []struct {
		name string
		dump string
		want []string
	}{
		{"allowed calls", head +
			"  kernel.go:1 0x1 e8 CALL runtime.memmove(SB)\n" +
			"  kernel.go:2 0x2 e8 CALL runtime.panicBounds(SB)\n" +
			"  kernel.go:3 0x3 e8 CALL runtime.morestack_noctxt.abi0(SB)\n" +
			"  kernel.go:4 0x4 e8 CALL github.com/anykernel/anykernel/compat/linux.(*Process).Syscall(SB)\n" +
			"  kernel.go:5 0x5 ff CALL DX\n", nil},
		{"allocation", head + "  kernel.go:1 0x1 e8 CALL runtime.newobject(SB)\n", []string{"CALL runtime.newobject(SB)"}},
		{"write barrier", head + "  kernel.go:1 0x1 83 CMPL runtime.writeBarrier(SB), $0x0\n", []string{"CMPL runtime.writeBarrier(SB), $0x0"}},
		{"other package", head + "  kernel.go:1 0x1 e8 CALL fmt.Sprintf(SB)\n", []string{"CALL fmt.Sprintf(SB)"}},
		{"absolute call outside the boot stub", head + "  kernel.go:1 0x1 e8 CALL 0x4af9d1\n", []string{"CALL 0x4af9d1"}},
		{"boot stub", "TEXT github.com/anykernel/anykernel/hal/pc.multibootEntry.abi0(SB) /x/entry.s\n  entry.s:1 0x1 e8 CALL 0x4af9d1\n", nil},
		{"non-kernel function ignored", "TEXT main.main(SB) /x/main.go\n  main.go:1 0x1 e8 CALL runtime.newobject(SB)\n", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			vs, _, err := checkKernelCode(strings.NewReader(tc.dump))
			require.NoError(t, err)
			var got []string
			for _, v := range vs {
				got = append(got, v.insn)
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

// TestKernelHonest disassembles the built images and fails if kernel code
// calls into the runtime beyond the allowed few or takes a write barrier.
func TestKernelHonest(t *testing.T) {
	for _, pkg := range []string{"examples/hello", "examples/stress", "examples/probe", "examples/nettcp"} {
		t.Run(pkg, func(t *testing.T) {
			img := image(t, pkg)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			require.NoError(t, checkImage(ctx, img))
		})
	}
}
