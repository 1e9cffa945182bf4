package pc

// line builds one line of kernel output without allocating.
type line struct {
	b [256]byte
	n int
}

func (l *line) bytes() []byte { return l.b[:l.n] }

func (l *line) s(s string) *line {
	for i := 0; i < len(s) && l.n < len(l.b); i++ {
		l.b[l.n] = s[i]
		l.n++
	}
	return l
}

func (l *line) d(v int64) *line {
	if v < 0 {
		l.s("-")
		v = -v
	}
	var tmp [20]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	for ; i < len(tmp) && l.n < len(l.b); i++ {
		l.b[l.n] = tmp[i]
		l.n++
	}
	return l
}

func (l *line) x(v uint64) *line {
	l.s("0x")
	for sh := 60; sh >= 0; sh -= 4 {
		if l.n < len(l.b) {
			l.b[l.n] = "0123456789abcdef"[(v>>uint(sh))&15]
			l.n++
		}
	}
	return l
}
