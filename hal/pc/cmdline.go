package pc

import "github.com/anykernel/anykernel/compat/linux"

// Cmdline is the kernel command line, parsed. Its grammar is
//
//	IMAGE [OPTION | NAME=VALUE]... [-- ARG...]
//
// IMAGE (the path the loader was given) becomes argv[0] without its
// directory; OPTIONs are kernel switches (anyk.trace: log every system
// call; anyk.summary: print counters at exit; anyk.novdso: no vDSO, so
// every clock read is a system call); NAME=VALUE words form the
// environment; words after "--" are the program's arguments. Within any
// word, %XX stands for the byte with hexadecimal value XX, so arguments may
// hold spaces, '%' and any other byte.
type Cmdline struct {
	Args    linux.Strings
	Env     linux.Strings
	Trace   bool
	Summary bool
	NoVDSO  bool
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func equal(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if b[i] != s[i] {
			return false
		}
	}
	return true
}

// ParseCmdline parses b into c. It reports false if the arguments or
// environment did not fit (the rest is dropped).
func ParseCmdline(b []byte, c *Cmdline) bool {
	ok := true
	var word [1024]byte
	first, args := true, false
	i := 0
	for i < len(b) {
		for i < len(b) && isSpace(b[i]) {
			i++
		}
		if i >= len(b) {
			break
		}
		n := 0
		raw := i
		for i < len(b) && !isSpace(b[i]) {
			ch := b[i]
			if ch == '%' && i+2 < len(b) {
				hi, ok1 := unhex(b[i+1])
				lo, ok2 := unhex(b[i+2])
				if ok1 && ok2 {
					ch = hi<<4 | lo
					i += 2
				}
			}
			if n < len(word) {
				word[n] = ch
				n++
			}
			i++
		}
		w := word[:n]
		rawWord := b[raw:i]
		switch {
		case first:
			first = false
			base := 0
			for j := 0; j < len(w); j++ {
				if w[j] == '/' {
					base = j + 1
				}
			}
			ok = c.Args.Add(w[base:]) && ok
		case args:
			ok = c.Args.Add(w) && ok
		case equal(rawWord, "--"):
			args = true
		case equal(rawWord, "anyk.trace"):
			c.Trace = true
		case equal(rawWord, "anyk.summary"):
			c.Summary = true
		case equal(rawWord, "anyk.novdso"):
			c.NoVDSO = true
		default:
			for j := 0; j < len(w); j++ {
				if w[j] == '=' {
					ok = c.Env.Add(w) && ok
					break
				}
			}
		}
	}
	return ok
}
