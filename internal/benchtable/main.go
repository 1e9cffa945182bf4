// Command benchtable reads `go test -bench` output on standard input and
// prints each measured figure beside its reference from the same run, as a
// ratio.
//
// Convention: a benchmark's sub-benchmarks are siblings (same name up to the
// last '/'); the sibling whose last name element starts with "ref" (for
// example "ref-kernel-veth" or "ref-raw-file") is the reference for the
// others. Throughput (MB/s) is compared when both report it, otherwise the
// rate derived from ns/op. A ratio above 1 means faster than the reference.
// When both also report CPU time per KiB moved (the "cpu-ns/KiB" metric),
// a second ratio compares that cost, reference over measured: above 1
// means the measured path spends less CPU per byte. It tells a path that
// is slower because each byte costs more from one that is slower because
// it keeps fewer cores busy.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
)

type result struct {
	name    string
	nsPerOp float64
	mbPerS  float64 // 0 when not reported
	cpuKiB  float64 // CPU ns per KiB moved; 0 when not reported
}

// parse reads benchmark result lines ("BenchmarkX/y-2  1000  123 ns/op  45.6 MB/s ...").
func parse(r io.Reader) ([]result, error) {
	var out []result
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		res := result{name: trimProcs(f[0])}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				res.nsPerOp = v
			case "MB/s":
				res.mbPerS = v
			case "cpu-ns/KiB":
				res.cpuKiB = v
			}
		}
		if res.nsPerOp > 0 {
			out = append(out, res)
		}
	}
	return out, sc.Err()
}

// trimProcs drops the "-N" GOMAXPROCS suffix go test appends.
func trimProcs(name string) string {
	if i := strings.LastIndexByte(name, '-'); i > 0 {
		if _, err := strconv.Atoi(name[i+1:]); err == nil {
			return name[:i]
		}
	}
	return name
}

func split(name string) (parent, leaf string) {
	i := strings.LastIndexByte(name, '/')
	if i < 0 {
		return "", name
	}
	return name[:i], name[i+1:]
}

type row struct {
	name, ref    string
	value, refV  float64
	unit         string
	ratio        float64
	cpuRatio     float64 // reference CPU per KiB over ours; 0 if unknown
	hasReference bool
}

// table pairs each result with its sibling reference.
func table(results []result) []row {
	refs := map[string]result{}
	for _, r := range results {
		parent, leaf := split(r.name)
		if parent != "" && strings.HasPrefix(leaf, "ref") {
			refs[parent] = r
		}
	}
	var rows []row
	for _, r := range results {
		parent, leaf := split(r.name)
		ref, ok := refs[parent]
		if !ok || strings.HasPrefix(leaf, "ref") {
			continue
		}
		rw := row{name: r.name, ref: ref.name, hasReference: true}
		if r.mbPerS > 0 && ref.mbPerS > 0 {
			rw.value, rw.refV, rw.unit = r.mbPerS, ref.mbPerS, "MB/s"
		} else {
			rw.value, rw.refV, rw.unit = 1e9/r.nsPerOp, 1e9/ref.nsPerOp, "op/s"
		}
		rw.ratio = rw.value / rw.refV
		if r.cpuKiB > 0 && ref.cpuKiB > 0 {
			rw.cpuRatio = ref.cpuKiB / r.cpuKiB
		}
		rows = append(rows, rw)
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].name < rows[j].name })
	return rows
}

func main() {
	results, err := parse(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
	rows := table(results)
	if len(rows) == 0 {
		fmt.Println("(no benchmark with a reference sibling in this run)")
		return
	}
	fmt.Printf("| %-56s | %12s | %-28s | %12s | %6s | %9s |\n", "benchmark", "value", "reference", "ref value", "ratio", "CPU ratio")
	fmt.Printf("|%s|%s|%s|%s|%s|%s|\n", strings.Repeat("-", 58), strings.Repeat("-", 14), strings.Repeat("-", 30), strings.Repeat("-", 14), strings.Repeat("-", 8), strings.Repeat("-", 11))
	for _, r := range rows {
		_, refLeaf := split(r.ref)
		cpu := "-"
		if r.cpuRatio > 0 {
			cpu = fmt.Sprintf("%.2fx", r.cpuRatio)
		}
		fmt.Printf("| %-56s | %7.1f %-4s | %-28s | %7.1f %-4s | %5.2fx | %9s |\n", r.name, r.value, r.unit, refLeaf, r.refV, r.unit, r.ratio, cpu)
	}
}
