package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"time"
)

// measurement is what anyk measure reports for an image.
type measurement struct {
	SizeBytes    int64
	LoadedBytes  uint64        // file data plus BSS, as loaded
	EntryToMain  time.Duration // median guest time from kernel entry to main.main
	EntryToExit  time.Duration // median guest time from kernel entry to exit
	MinMemoryMiB int           // smallest -m that runs the program to exit status 0
}

var (
	mainTime = regexp.MustCompile(`entry->main (\d+) us`)
	exitTime = regexp.MustCompile(`entry->exit (\d+) us`)
)

func cmdMeasure(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("measure", flag.ContinueOnError)
	fs.SetOutput(stderr)
	boots := fs.Int("boots", 5, "boots to time")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return errors.New("measure: no image")
	}
	o := runOptions{Image: rest[0], Args: rest[1:], Timeout: 3 * time.Minute}
	if len(o.Args) > 0 && o.Args[0] == "--" {
		o.Args = o.Args[1:]
	}
	m, err := measure(ctx, o, *boots)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "image %s\n", o.Image)
	fmt.Fprintf(stdout, "  file size        %d bytes\n", m.SizeBytes)
	fmt.Fprintf(stdout, "  loaded size      %d bytes (with BSS)\n", m.LoadedBytes)
	fmt.Fprintf(stdout, "  entry -> main    %v (guest TSC, median of %d boots, TCG)\n", m.EntryToMain, *boots)
	fmt.Fprintf(stdout, "  entry -> exit    %v\n", m.EntryToExit)
	fmt.Fprintf(stdout, "  smallest -m      %d MiB\n", m.MinMemoryMiB)
	return nil
}

// measure boots o's image to time it and bisects the smallest memory it
// runs in.
func measure(ctx context.Context, o runOptions, boots int) (*measurement, error) {
	st, err := os.Stat(o.Image)
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(o.Image)
	if err != nil {
		return nil, err
	}
	info, err := inspect(raw)
	if err != nil {
		return nil, err
	}
	m := &measurement{SizeBytes: st.Size(), LoadedBytes: info.bssEnd - info.loadAddr}
	var mains, exits []time.Duration
	for i := 0; i < max(boots, 1); i++ {
		so := o
		so.Summary = true
		var out bytes.Buffer
		code, err := boot(ctx, so, nil, &out, io.Discard)
		if err != nil || code != 0 {
			return nil, fmt.Errorf("measure: boot %d: status %d, %v\n%s", i, code, err, out.String())
		}
		mm, me := mainTime.FindSubmatch(out.Bytes()), exitTime.FindSubmatch(out.Bytes())
		if mm == nil || me == nil {
			return nil, fmt.Errorf("measure: no timing in the summary:\n%s", out.String())
		}
		us, _ := strconv.Atoi(string(mm[1]))
		mains = append(mains, time.Duration(us)*time.Microsecond)
		us, _ = strconv.Atoi(string(me[1]))
		exits = append(exits, time.Duration(us)*time.Microsecond)
	}
	m.EntryToMain, m.EntryToExit = median(mains), median(exits)

	runs := func(mib int) bool {
		so := o
		so.Memory = strconv.Itoa(mib) + "M"
		code, err := boot(ctx, so, nil, io.Discard, io.Discard)
		return err == nil && code == 0
	}
	lo := int((info.bssEnd+1<<20-1)>>20) + 1 // below this anyk run refuses
	hi := 256
	if !runs(hi) {
		return nil, errors.New("measure: does not run in 256 MiB")
	}
	for lo < hi {
		mid := (lo + hi) / 2
		if runs(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	m.MinMemoryMiB = hi
	return m, nil
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
