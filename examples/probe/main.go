// Probe runs a broad sample of the standard library inside the unikernel:
// many goroutines, maps, JSON, regular expressions, deep recursion, and a
// TLS 1.3 handshake with freshly generated keys between two goroutines over
// net.Pipe. It prints one line per probe and exits 1 if any failed.
package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"regexp"
	"sort"
	"sync"
	"time"

	_ "github.com/anykernel/anykernel/hal/pc"
)

func main() {
	os.Exit(run(os.Stdout))
}

func run(w io.Writer) int {
	probes := []struct {
		name string
		f    func() error
	}{
		{"goroutines", probeGoroutines},
		{"maps", probeMaps},
		{"json", probeJSON},
		{"regexp", probeRegexp},
		{"recursion", probeRecursion},
		{"tls", probeTLS},
	}
	code := 0
	for _, p := range probes {
		if err := p.f(); err != nil {
			fmt.Fprintf(w, "FAIL %s: %v\n", p.name, err)
			code = 1
			continue
		}
		fmt.Fprintf(w, "PASS %s\n", p.name)
	}
	return code
}

func probeGoroutines() error {
	const n = 10000
	var wg sync.WaitGroup
	var mu sync.Mutex
	sum := 0
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Millisecond)
			mu.Lock()
			sum += i
			mu.Unlock()
		}()
	}
	wg.Wait()
	if sum != n*(n-1)/2 {
		return fmt.Errorf("sum %d", sum)
	}
	return nil
}

func probeMaps() error {
	m := map[string]int{}
	for i := 0; i < 100000; i++ {
		m[fmt.Sprint(i)] = i
	}
	for i := 0; i < 100000; i += 997 {
		if m[fmt.Sprint(i)] != i {
			return fmt.Errorf("key %d lost", i)
		}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) != 100000 || keys[0] != "0" {
		return errors.New("bad keys")
	}
	return nil
}

func probeJSON() error {
	type rec struct {
		Name string            `json:"name"`
		Tags []string          `json:"tags"`
		Meta map[string]string `json:"meta"`
	}
	in := rec{"unikernel", []string{"go", "x86-64"}, map[string]string{"boot": "multiboot"}}
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	var out rec
	if err := json.Unmarshal(b, &out); err != nil {
		return err
	}
	if out.Name != in.Name || len(out.Tags) != 2 || out.Meta["boot"] != "multiboot" {
		return fmt.Errorf("round trip gave %+v", out)
	}
	return nil
}

func probeRegexp() error {
	re := regexp.MustCompile(`(\w+)@(\w+)\.org`)
	m := re.FindAllStringSubmatch("ann@golang.org, bob@kernel.org", -1)
	if len(m) != 2 || m[1][2] != "kernel" {
		return fmt.Errorf("matches %v", m)
	}
	return nil
}

func depth(n int) int {
	var pad [16]byte
	if n == 0 {
		return int(pad[0])
	}
	return depth(n-1) + 1 + int(pad[n%16])
}

func probeRecursion() error {
	if d := depth(200000); d != 200000 {
		return fmt.Errorf("depth %d", d)
	}
	return nil
}

func probeTLS() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "anykernel"},
		DNSNames:     []string{"anykernel"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	a, b := net.Pipe()
	srv := tls.Server(a, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
	cli := tls.Client(b, &tls.Config{RootCAs: pool, ServerName: "anykernel"})
	errc := make(chan error, 1)
	go func() {
		buf := make([]byte, 5)
		if _, err := io.ReadFull(srv, buf); err != nil {
			errc <- err
			return
		}
		_, err := srv.Write(bytes.ToUpper(buf))
		errc <- err
	}()
	if _, err := cli.Write([]byte("hello")); err != nil {
		return err
	}
	got := make([]byte, 5)
	if _, err := io.ReadFull(cli, got); err != nil {
		return err
	}
	if err := <-errc; err != nil {
		return err
	}
	if string(got) != "HELLO" || cli.ConnectionState().Version != tls.VersionTLS13 {
		return fmt.Errorf("got %q over %x", got, cli.ConnectionState().Version)
	}
	return nil
}
